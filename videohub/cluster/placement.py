"""Which worker should own a camera stream: rendezvous (highest random weight) hashing by capacity.

Each (worker, stream) pair gets a score from a hash; the stream goes to the worker with the highest
score. Weighted by capacity as in "Weighted Distributed Hash Tables" (Schindelhauer & Schomaker):
score = -capacity / ln(h), h uniform in (0, 1), so a worker of capacity 2 wins twice as often. When a
worker joins or leaves, only the streams whose top score was (or becomes) that worker's move.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar


class Placeable(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def capacity(self) -> float: ...


W = TypeVar("W", bound=Placeable)

_SCALE = float(1 << 64)


def score(worker_id: str, capacity: float, key: str) -> float:
    digest = hashlib.blake2b(f"{worker_id}\x00{key}".encode(), digest_size=8).digest()
    h = (int.from_bytes(digest, "big") + 0.5) / _SCALE  # in (0, 1), never 0 or 1
    return -capacity / math.log(h)


def ranked(key: str, workers: Iterable[W]) -> list[W]:
    """The workers in placement order for ``key``: the first one owns it, the next takes over."""
    return sorted(workers, key=lambda w: (-score(w.id, w.capacity, key), w.id))


def choose(key: str, workers: Sequence[W]) -> W | None:
    """The owner ``key`` is placed on (None without workers)."""
    best: W | None = None
    best_score = -1.0
    for worker in workers:
        s = score(worker.id, worker.capacity, key)
        if s > best_score or (s == best_score and best is not None and worker.id < best.id):
            best, best_score = worker, s
    return best


def stream_key(camera_id: str, stream: str) -> str:
    return f"{camera_id}:{stream}"
