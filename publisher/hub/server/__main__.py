"""``python -m publisher.hub.server --root DIR --port N``: the server as a bare process (tests kill it)."""

from __future__ import annotations

import argparse
import contextlib
import sys

from publisher.hub.server.app import LocalHub
from publisher.hub.server.faults import Faults


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m publisher.hub.server")
    parser.add_argument("--root", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    hub = LocalHub(args.root, args.host, args.port, faults=Faults.from_env())
    hub.start()
    print(f"serving {hub.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        hub.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
