"""A process that only checks structure loads transformers' tokenizers without importing torch.

``from transformers import AutoTokenizer`` imports torch whenever torch is installed (its
config utilities pull in the RoPE helpers), which costs about 2 s on a 2-core machine, four
times what the structural checks take altogether. transformers supports running without
torch ("only tokenizers, configuration and file/data utilities"), and it decides by
``importlib.util.find_spec("torch")``, which answers None for a module whose ``sys.modules``
entry is None. So ``publisher check`` with nothing to measure marks torch as absent before
anything imports transformers: AutoTokenizer loads the same tokenizer (the fast tokenizers
backend and jinja2 need no torch), in a process that ends after the checks.

Only for such a process: once transformers has decided torch is absent, its modeling code
stays unavailable in that process. So it applies only to a process the ``publisher`` program
owns (``publisher.cli.run``, which exits after one command; never ``main()`` called by a
library user or a test), and never when torch or transformers is already imported.
"""

from __future__ import annotations

import os
import sys

_whole_process = False


def process_ends_after_command() -> None:
    """Called by the ``publisher`` program: this process runs one command, then exits."""
    global _whole_process
    _whole_process = True


def tokenizers_without_torch() -> bool:
    """Mark torch as absent for the rest of this process; False (and nothing done) if not allowed."""
    if not _whole_process or "torch" in sys.modules or "transformers" in sys.modules:
        return False
    sys.modules["torch"] = None  # type: ignore[assignment]  # find_spec("torch") is None: import blocked
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")  # no "PyTorch was not found" line
    return True
