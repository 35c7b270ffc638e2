"""Fault injection for tests and drills: failing statuses, dropped uploads, crashes mid-commit.

Off unless a ``Faults`` with rules is given to ``LocalHub`` (or ``PUBLISHER_HUB_FAULTS``
names a JSON file of rules for a server started as a subprocess). A rule matches a request
(method + regex on the raw path) or a named point inside the server ("commit.before-ref",
"commit.after-ref") and fires ``times`` times, after letting the first ``skip`` matches through:

- ``status``: answer ``status`` (e.g. 500, 429 with ``retry_after``) without running the route;
- ``drop``: read ``after_bytes`` of the request body, then cut the connection;
- ``pause``: write ``marker`` (a file) and sleep ``seconds``, or until ``resume`` is set (a test then
  kills the process, or looks at the client mid-request and lets it go on);
- ``crash``: ``os._exit(137)``, as a SIGKILL would;
- ``raise``: raise ``InjectedFault`` there (an in-process stand-in for a crash: the request fails).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Action = Literal["status", "drop", "pause", "crash", "raise"]


class InjectedFault(RuntimeError):
    pass


@dataclass
class FaultRule:
    action: Action
    path: str = ".*"  # regex searched in the raw request path, or a point name
    method: str | None = None
    point: bool = False  # True: matches named points, not requests
    times: int = 1
    status: int = 500
    retry_after: int | None = None
    after_bytes: int = 0
    seconds: float = 30.0
    marker: str | None = None
    resume: threading.Event | None = None  # ends a pause early
    skip: int = 0
    fired: int = 0
    seen: int = 0

    def matches(self, method: str | None, path: str) -> bool:
        if self.fired >= self.times:
            return False
        if self.method and method and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> Faults:
        path = os.environ.get("PUBLISHER_HUB_FAULTS")
        if not path:
            return cls()
        return cls([FaultRule(**r) for r in json.loads(Path(path).read_text())])

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _take(self, method: str | None, path: str, point: bool) -> FaultRule | None:
        if not self.rules:
            return None
        with self._lock:
            for rule in self.rules:
                if rule.point == point and rule.matches(method, path):
                    rule.seen += 1
                    if rule.seen <= rule.skip:
                        continue
                    rule.fired += 1
                    return rule
        return None

    def on_request(self, method: str, path: str) -> FaultRule | None:
        return self._take(method, path, point=False)

    def point(self, name: str, **context: str) -> None:
        rule = self._take(None, name, point=True)
        if rule is not None:
            self.fire(rule, f"{name} {context}")

    @staticmethod
    def fire(rule: FaultRule, where: str) -> None:
        if rule.action == "pause":
            if rule.marker:
                Path(rule.marker).write_text(where)
            if rule.resume is not None:
                rule.resume.wait(rule.seconds)
            else:
                time.sleep(rule.seconds)
        elif rule.action == "crash":
            os._exit(137)
        elif rule.action == "raise":
            raise InjectedFault(f"injected fault at {where}")
