"""Password hashing (argon2id) on its own small thread pool, with a bounded wait.

An argon2id check holds 64 MiB and tens of milliseconds of CPU. On the default executor (asyncio's
``to_thread``) a login flood took the threads that snapshot encoding and keyframe diagnosis need, and
queued without bound. Here a few dedicated threads do the work, at most ``queue`` checks wait for
one, and any further check is refused at once (503 + Retry-After) before it costs anything.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from videohub.errors import Unavailable

T = TypeVar("T")

BUSY_RETRY_AFTER = 1


class Slot:
    """One admitted piece of work: a place in the pool, held from admission until its thread is done.

    ``with pool.admit() as slot:`` then at most one ``await slot.verify(...)`` or ``slot.hash(...)``.
    Leaving the block without running anything gives the place back; once a job runs, its thread
    gives it back when it finishes (a request that goes away meanwhile does not free the thread).
    """

    def __init__(self, pool: PasswordPool) -> None:
        self._pool = pool
        self._released = False
        self._submitted = False

    def _release(self, _: object = None) -> None:
        with self._pool._lock:
            if not self._released:
                self._released = True
                self._pool._in_flight -= 1

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._submitted:
            raise RuntimeError("a password slot runs one job")
        self._submitted = True
        try:
            future: Future[T] = self._pool._executor.submit(fn)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    async def hash(self, password: str) -> str:
        hasher = self._pool.hasher
        return await self._run(lambda: hasher.hash(password))

    async def verify(self, pw_hash: str, password: str) -> bool:
        hasher = self._pool.hasher

        def check() -> bool:
            try:
                return bool(hasher.verify(pw_hash, password))
            except (VerificationError, InvalidHashError):
                return False

        return await self._run(check)

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._submitted:
            self._release()


class PasswordPool:
    """Hashes and checks passwords on ``workers`` threads; admits at most ``workers + queue`` at once.

    Owned by the UserStore; ``close()`` stops the threads (safe to call twice).
    """

    def __init__(self, hasher: PasswordHasher, *, workers: int, queue: int) -> None:
        self.hasher = hasher
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="videohub-argon2")
        self._limit = workers + queue
        self._lock = threading.Lock()
        self._in_flight = 0
        self.refused = 0
        """Work refused because the pool was full (for /metrics)."""

    def admit(self) -> Slot:
        """A place for one hash or check, or Unavailable (503) at once when all are taken."""
        with self._lock:
            if self._in_flight >= self._limit:
                self.refused += 1
                raise Unavailable("too many logins are being checked; try again shortly", BUSY_RETRY_AFTER)
            self._in_flight += 1
        return Slot(self)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
