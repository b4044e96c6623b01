"""Cancellation that cannot get lost: guards for the service's background loops.

Python 3.11's ``asyncio.wait_for`` returns the inner result instead of raising when the waiting task
is cancelled in the same loop iteration as the inner future completes (CPython gh-86296, fixed in
3.12). redis-py wraps every command it sends in ``wait_for`` when ``socket_timeout`` is set (its
default is 5 s), so a task cancelled while it sends a Redis command sometimes carries on as if
nothing happened: measured here, 4 of 100 cancels of an ``XAUTOCLAIM``/``XREADGROUP`` loop were lost.
A background loop that loses its cancel never ends, and the shutdown that awaits it hangs (seen in
CI: the lifespan exit waited forever on the webhook delivery loop).

The task still records the request (``Task.cancelling()`` stays above zero), so every background
loop calls ``checkpoint()`` once per turn, and ``cancel_and_wait`` re-cancels and gives up with an
error after a bound instead of hanging the shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self

log = logging.getLogger(__name__)


def checkpoint() -> None:
    """Raise ``CancelledError`` if this task was cancelled and a library swallowed it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(task: asyncio.Task[Any], within: float = 5.0) -> bool:
    """Cancel ``task`` and wait for it to end, re-cancelling each second; True when it ended.

    Never raises the task's own outcome and never waits longer than ``within`` seconds (it logs instead),
    so one stuck task cannot hold up the service's shutdown. The caller's own cancellation is
    respected.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not task.done():
        task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.error("task %s did not stop within %.0f s of being cancelled", task.get_name(), within)
            return False
        await asyncio.wait({task}, timeout=min(1.0, remaining))
    if not task.cancelled():
        task.exception()  # retrieved: the task's own done-callback reports it
    return True


class TaskOwner:
    """The one way a part owns background tasks: every task it spawns runs in one ``asyncio.TaskGroup``.

    The group lives in a holder task, so a part entered on the lifespan's ``AsyncExitStack`` keeps its
    tasks beside the lifespan rather than in it. A task's failure is logged and ends only that task
    (one stuck camera loop must not stop the others); ``close()`` cancels what is left with
    ``cancel_and_wait`` (so a cancel a library swallowed cannot hang the shutdown) and waits for the
    group to end. Loops still call ``checkpoint()`` once per turn.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._group: asyncio.TaskGroup | None = None
        self._holder: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._release = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = CloseOnce()

    @property
    def started(self) -> bool:
        """Open: ``spawn`` works (until ``close``)."""
        return self._group is not None

    @property
    def closed(self) -> bool:
        return self._closing.started

    async def start(self) -> None:
        """Open the group (idempotent); ``spawn`` works from here until ``close``."""
        if self.closed:
            return
        if self._ready is None:  # the first caller opens it; a concurrent one waits until it is open
            self._ready = asyncio.get_running_loop().create_future()
            self._holder = asyncio.create_task(self._hold(self._ready), name=f"{self.name}-tasks")
        await asyncio.shield(self._ready)

    async def _hold(self, ready: asyncio.Future[None]) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            ready.set_result(None)
            await self._release.wait()
        self._group = None

    def spawn(self, coro: Coroutine[Any, Any, object], name: str | None = None) -> asyncio.Task[None]:
        """Run ``coro`` in the group; raises ``RuntimeError`` (closing the coroutine) once closed."""
        if self._group is None or self.closed:
            coro.close()
            raise RuntimeError(f"{self.name}: tasks are not running (not started, or closed)")
        task = self._group.create_task(self._guard(coro), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, object]) -> None:
        try:
            await coro
        except Exception:
            log.exception("%s: task %s failed", self.name, _task_name())

    async def drain(self) -> None:
        """Wait until every task spawned so far (and any they spawn meanwhile) has ended on its own."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel every task and wait for the group to end. Safe to call twice; a second, concurrent
        caller waits for the first."""
        await self._closing.run(self._close)

    async def _close(self) -> None:
        await asyncio.gather(*(cancel_and_wait(task) for task in list(self._tasks)))
        self._release.set()
        if self._holder is not None:
            await cancel_and_wait(self._holder)


def _task_name() -> str:
    task = asyncio.current_task()
    return task.get_name() if task is not None else "?"


class CloseOnce:
    """``close()`` that runs its body once; a second caller, concurrent or later, waits for the first.

    As aiortc's ``RTCPeerConnection.close()``: ``if self.__isClosed: await self.__isClosed; return``.
    """

    def __init__(self) -> None:
        self._done: asyncio.Future[None] | None = None

    @property
    def started(self) -> bool:
        return self._done is not None

    async def run(self, body: Callable[[], Awaitable[None]]) -> None:
        if self._done is not None:
            await asyncio.shield(self._done)
            return
        self._done = asyncio.get_running_loop().create_future()
        try:
            await body()
        finally:
            self._done.set_result(None)


class Part:
    """A long-lived part of the service: ``async with part:`` starts it, leaving the block stops it.

    Subclasses implement ``start()`` and ``close()`` (close safe twice, a concurrent second caller
    waiting for the first: use ``CloseOnce``) and own their tasks with a ``TaskOwner``. The app's
    lifespan enters every part on one ``AsyncExitStack``.
    """

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
