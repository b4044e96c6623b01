"""Rendezvous placement: even shares, weighted by capacity, and only a leaving or joining worker's
share moves (what keeps a worker's crash from reshuffling every wall)."""

from __future__ import annotations

from dataclasses import dataclass

from videohub.cluster.placement import assign, choose, ranked, stream_key

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


def loads(assignment: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for worker_id in assignment.values():
        out[worker_id] = out.get(worker_id, 0) + 1
    return out


def test_bounded_load_keeps_30_cameras_on_3_workers_within_10_plus_or_minus_2() -> None:
    workers = [W("w1"), W("w2"), W("w3")]
    cameras = [stream_key(f"cc-{i:02d}", "main") for i in range(30)]
    plain = {w.id: 0 for w in workers}
    for key in cameras:
        chosen = choose(key, workers)
        assert chosen is not None
        plain[chosen.id] += 1
    bounded = loads(assign(cameras, workers))
    assert sum(bounded.values()) == 30
    assert all(8 <= n <= 11 for n in bounded.values()), (bounded, plain)


def test_bounded_load_follows_capacity_and_moves_little_when_a_worker_leaves() -> None:
    workers = [W("big", 2.0), W("a"), W("b")]
    keys = KEYS[:400]
    before = assign(keys, workers)
    counts = loads(before)
    assert counts["big"] <= 1.1 * 200 + 1 and counts["big"] >= 180, counts
    after = assign(keys, [W("big", 2.0), W("a")])
    moved = [k for k in keys if before[k] != after[k]]
    lost = [k for k in keys if before[k] == "b"]
    assert set(lost) <= set(moved)
    assert len(moved) <= len(lost) * 1.5  # the leaver's share, plus a little spill
