"""Rendezvous placement: even shares, weighted by capacity, and only a leaving or joining worker's
share moves (what keeps a worker's crash from reshuffling every wall)."""

from __future__ import annotations

from dataclasses import dataclass

from videohub.cluster.placement import choose, ranked, stream_key

KEYS = [stream_key(f"cam{i}", "main") for i in range(3000)]


@dataclass(frozen=True)
class W:
    id: str
    capacity: float = 1.0


def shares(workers: list[W]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {w.id: [] for w in workers}
    for key in KEYS:
        chosen = choose(key, workers)
        assert chosen is not None
        out[chosen.id].append(key)
    return out


def test_streams_spread_evenly_over_equal_workers() -> None:
    counts = {w: len(k) for w, k in shares([W("w1"), W("w2"), W("w3")]).items()}
    assert all(900 <= n <= 1100 for n in counts.values()), counts


def test_a_worker_of_twice_the_capacity_gets_about_twice_the_streams() -> None:
    counts = {w: len(k) for w, k in shares([W("big", 2.0), W("a"), W("b")]).items()}
    assert 1.7 <= counts["big"] / ((counts["a"] + counts["b"]) / 2) <= 2.3, counts


def test_only_the_leaving_workers_streams_move() -> None:
    before = shares([W("w1"), W("w2"), W("w3")])
    after = shares([W("w1"), W("w3")])
    for survivor in ("w1", "w3"):
        assert set(before[survivor]) <= set(after[survivor])  # nothing of theirs moved
    moved = set(after["w1"]) - set(before["w1"]) | set(after["w3"]) - set(before["w3"])
    assert moved == set(before["w2"])


def test_a_joining_worker_takes_streams_only_for_itself() -> None:
    before = shares([W("w1"), W("w2")])
    after = shares([W("w1"), W("w2"), W("w3")])
    for old in ("w1", "w2"):
        assert set(after[old]) <= set(before[old])  # they only lose streams, to the newcomer
    assert 800 <= len(after["w3"]) <= 1200


def test_the_ranking_names_the_next_owner() -> None:
    workers = [W("w1"), W("w2"), W("w3")]
    for key in KEYS[:200]:
        order = ranked(key, workers)
        assert order[0] == choose(key, workers)
        remaining = [w for w in workers if w != order[0]]
        assert order[1] == choose(key, remaining)
