"""Refusal logging that a flood cannot turn into a log flood."""

from __future__ import annotations

import logging
import time


class RefusalLog:
    """Logs one kind of refusal at most once per ``interval`` seconds, with the count since the last line."""

    def __init__(self, logger: logging.Logger, what: str, interval: float = 10.0) -> None:
        self._log = logger
        self._what = what
        self._interval = interval
        self._count = 0
        self._last = float("-inf")

    def refused(self, detail: str = "") -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._log.warning("%s: %d refused since the last report%s", self._what, self._count, detail)
            self._count = 0
            self._last = now
