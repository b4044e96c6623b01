"""Fenced writes: a write made on behalf of a lease happens only while the lease is still the writer's.

A ``Fence`` is a lease key and the value this worker was granted (``"<worker> <token>"``, see
``videohub.cluster.leases``). ``check(pipe, fence)`` watches the key inside a ``WATCH``/``MULTI``
transaction and raises ``Fenced`` when it holds something else: the transaction then writes nothing,
and if the lease changes between the check and ``EXEC``, ``EXEC`` fails (``WatchError``) and the caller's
retry checks again. So a worker paused past its lease cannot write after the new owner was granted it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from videohub.errors import VideohubError


class Fenced(VideohubError):
    """The lease this write was made for belongs to another worker now."""

    status = 409


@dataclass(frozen=True, slots=True)
class Fence:
    key: str
    value: str

    @property
    def token(self) -> int:
        return int(self.value.rsplit(" ", 1)[1])


async def check(pipe: Any, fence: Fence | None) -> None:
    """Inside a pipeline before ``multi()``: watch the lease and raise ``Fenced`` if it is not ours."""
    if fence is None:
        return
    await pipe.watch(fence.key)
    if await pipe.get(fence.key) != fence.value:
        await pipe.unwatch()
        raise Fenced(f"lease {fence.key} is no longer this worker's")
