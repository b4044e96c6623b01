"""A watchdog child that stops a benchmark's helper processes when the benchmark ends, however it ends.

The benchmark's ``finally`` blocks stop the service, the simulator and Janus on an exception, on
SIGINT (``bench/run``'s timeout) and on SIGTERM. A SIGKILL runs no ``finally``: the helpers run in
their own sessions (so a signal to the benchmark's group does not tear them down half-way), and
would outlive it. ``Guard`` starts a small process in its own session that reads the helpers'
process-group ids on its stdin; when its stdin closes — the benchmark closed it, or died — it sends
SIGTERM to every group still alive, then SIGKILL to those left after 10 s.
"""

from __future__ import annotations

import subprocess
import sys

_WATCHDOG = """
import os, signal, sys, time
groups = [int(line) for line in sys.stdin if line.strip()]
def alive(group):
    try:
        os.killpg(group, 0)
    except OSError:
        return False
    return True
for group in groups:
    if alive(group):
        os.killpg(group, signal.SIGTERM)
deadline = time.monotonic() + 10
while time.monotonic() < deadline and any(alive(g) for g in groups):
    time.sleep(0.2)
for group in groups:
    if alive(group):
        os.killpg(group, signal.SIGKILL)
"""


class Guard:
    """``watch(pgid)`` each helper; ``close()`` (or the benchmark's death) stops what is still running."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG],
            stdin=subprocess.PIPE,
            start_new_session=True,
            text=True,
        )

    def watch(self, pgid: int) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{pgid}\n")
        self._proc.stdin.flush()

    def close(self) -> None:
        """Stop every watched group still alive and wait for the watchdog. Safe to call twice."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)
