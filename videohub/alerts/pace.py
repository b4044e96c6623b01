"""At most N sends in any 60 seconds, per channel and worker: the robots' own limit, kept on our side.

WeCom and DingTalk group robots take 20 messages a minute; DingTalk then refuses the robot for ten
minutes. A camera line going down at once raises many alerts together: paced, they go out at the
robot's rate instead of being refused (and, after ``webhook_give_up_after_seconds``, parked).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class Pace:
    """A sliding window of the last ``limit`` send times (``clock`` is monotonic seconds)."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._sent: deque[float] = deque()

    def wait_seconds(self) -> float:
        """How long until one more send fits the window (0: now)."""
        now = self.clock()
        while self._sent and now - self._sent[0] >= WINDOW_SECONDS:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return 0.0
        return WINDOW_SECONDS - (now - self._sent[0])

    def take(self) -> bool:
        """Count one send now if it fits the window; False (nothing counted) if it does not."""
        if self.wait_seconds() > 0:
            return False
        self._sent.append(self.clock())
        return True

    def note(self) -> None:
        """Count a send made whatever the window says (a re-send a user asked for)."""
        self.wait_seconds()
        self._sent.append(self.clock())

    async def free(self) -> None:
        """Wait until one more send fits (counting nothing)."""
        while True:
            wait = self.wait_seconds()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def acquire(self) -> None:
        """Wait until one more send fits, and count it."""
        await self.free()
        self._sent.append(self.clock())
