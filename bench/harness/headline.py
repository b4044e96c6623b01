"""The performance page's headline section: videohub against Janus on the same camera (``bench/peers.py``).

Three tables from the latest ``bench/results/peers.jsonl`` run: server CPU and per-viewer cost per level
for videohub, Janus tuned (``event_loops`` = cores, the peer to beat) and Janus as shipped, with the
issue's goals and whether they are met; warm time to first frame; and the validity of every turn.
Each figure is the mean of the rounds, with each round's value in brackets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Line = dict[str, Any]
SERVERS = ("videohub", "janus-tuned", "janus-shipped")
TITLE = "Headline: videohub against Janus, the same camera, alternating in one run"

# The goals of the issue "Performance toward the limit", by level. Each takes the level's lines by server
# and answers (goal text, met or None when it cannot be judged).
Goal = Callable[[dict[str, Line]], tuple[str, bool | None]]


def _num(line: Line | None, key: str) -> float | None:
    value = None if line is None else line.get(key)
    return float(value) if isinstance(value, int | float) else None


def _goal_no_camera(by: dict[str, Line]) -> tuple[str, bool | None]:
    cpu = _num(by.get("videohub"), "server_cpu_pct")
    return "videohub ≤ 0.5 % of a core", None if cpu is None else cpu <= 0.5


def _goal_feed(by: dict[str, Line]) -> tuple[str, bool | None]:
    r = _num(by.get("videohub"), "cpu_ratio_to_janus_tuned")
    return "videohub ≤ 1.5× Janus", None if r is None else r <= 1.5


def _goal_first(by: dict[str, Line]) -> tuple[str, bool | None]:
    r = _num(by.get("videohub"), "per_viewer_ratio_to_janus_tuned")
    return "first viewer ≤ 1.0× Janus", None if r is None else r <= 1.0


def _goal_hundred(by: dict[str, Line]) -> tuple[str, bool | None]:
    per = _num(by.get("videohub"), "per_viewer_cpu_pct")
    r = _num(by.get("videohub"), "per_viewer_ratio_to_janus_tuned")
    text = "≤ 0.13 % per viewer and ≤ 0.5× Janus tuned"
    return text, None if per is None or r is None else per <= 0.13 and r <= 0.5


GOALS: dict[str, Goal] = {"none": _goal_no_camera, "0": _goal_feed, "1": _goal_first, "100": _goal_hundred}


def _f(value: Any, digits: int = 2) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{value:.{digits}f}"


def _cell(line: Line | None, key: str, digits: int = 2) -> str:
    """``mean`` with each round's value in brackets, and a flag when a round was invalid."""
    if line is None or line.get(key) is None:
        return "—"
    text = _f(line[key], digits)
    rounds = line.get(f"{key}_rounds") or []
    if len(rounds) > 1:
        text += " (" + " / ".join(_f(x, digits) for x in rounds) + ")"
    if not line.get("valid", True):
        text += " **invalid**"
    return text


def _level_name(level: str) -> str:
    if level == "none":
        return "no camera"
    if level == "0":
        return "0 (feed running)"
    return level


def _met(ok: bool | None, lines: list[Line]) -> str:
    if ok is None:
        return "—"
    if not all(x.get("valid", True) for x in lines):
        return "invalid"
    return "yes" if ok else "**no**"


def _cpu_table(lines: list[Line]) -> str:
    levels: dict[str, dict[str, Line]] = {}
    for x in lines:
        if "level" in x:
            levels.setdefault(str(x["level"]), {})[x["server"]] = x
    head = (
        "| viewers | videohub CPU | Janus tuned CPU | Janus shipped CPU | videohub per viewer"
        " | Janus tuned per viewer | Janus shipped per viewer | videohub / Janus tuned | goal | met |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for level in sorted(levels, key=lambda v: -1 if v == "none" else int(v)):
        by = levels[level]
        vh = by.get("videohub")
        viewers = level.isdigit() and int(level) > 0
        # The ratio that the level's goal is about: per viewer once there are viewers, else the CPU.
        ratio = _num(vh, "per_viewer_ratio_to_janus_tuned" if viewers else "cpu_ratio_to_janus_tuned")
        goal, ok = GOALS[level](by) if level in GOALS else ("", None)
        cells = [_level_name(level)]
        cells += [_cell(by.get(s), "server_cpu_pct") + (" %" if by.get(s) else "") for s in SERVERS]
        cells += [_cell(by.get(s), "per_viewer_cpu_pct", 3) if viewers else "—" for s in SERVERS]
        cells += [
            f"{_f(ratio)}×" if ratio is not None else "—",
            goal,
            _met(ok, list(by.values())) if goal else "",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def _ttff_table(lines: list[Line]) -> str:
    ttff = [x for x in lines if x.get("mode") == "warm_ttff"]
    if not ttff:
        return ""
    gop = ttff[0].get("camera", {}).get("gop_s")
    out = (
        f"\nWarm time to first frame (camera GOP {_f(gop, 0)} s; from the WHEP POST or Janus's `watch` to"
        " the first frame decoded by an aiortc player or shown by Chromium):\n\n"
        "| player | server | runs | p50 | p95 | max | after ICE + DTLS, p50 / p95 | goal | met |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    for viewer in dict.fromkeys(x.get("viewer", "aiortc") for x in ttff):
        group = [x for x in ttff if x.get("viewer", "aiortc") == viewer]
        janus_p95 = [x["p95_ms"] for x in group if x["server"] != "videohub"]
        for x in group:
            goal = met = ""
            if x["server"] == "videohub" and janus_p95:
                goal = "p95 keeps the lead (below every Janus)"
                met = "yes" if x["p95_ms"] < min(janus_p95) else "**no**"
            after = "—"
            if x.get("after_connected_p50_ms") is not None:
                after = f"{_f(x['after_connected_p50_ms'], 0)} / {_f(x.get('after_connected_p95_ms'), 0)} ms"
            out += (
                f"| {viewer} | {x['label']} | {x['runs']} | {_f(x['p50_ms'], 0)} ms | {_f(x['p95_ms'], 0)} ms"
                f" | {_f(x['max_ms'], 0)} ms | {after} | {goal} | {met} |\n"
            )
    asked = [x for x in ttff if x["server"] != "videohub" and x.get("camera_answered_keyframe_requests")]
    if asked:
        shortest = min(x["camera_keyframe_interval_min_s"] for x in asked)
        out += (
            f"\n**The camera answered keyframe requests** during the Janus joins (keyframe interval down to"
            f" {_f(shortest, 2)} s against its {_f(gop, 0)} s GOP): Janus's RTCP PLI reaches the simulator's"
            " encoder over RTSP/UDP, so *keyframe buffer off* got a fresh keyframe instead of waiting for the"
            " next scheduled one, as it would with a camera that ignores requests.\n"
        )
    return out


def _turns_table(lines: list[Line]) -> str:
    cpu = [x for x in lines if "level" in x and x.get("viewers")]
    if not cpu:
        return ""
    out = (
        "\nEvery turn: frames each viewer received (the camera's rate in brackets; valid = every viewer"
        " ≥ 90 % of it in every round) and how busy the whole machine was:\n\n"
        "| viewers | server | frames/s per viewer (min; camera) | valid rounds | machine busy % |\n"
        "|---|---|---|---|---|\n"
    )
    for x in cpu:
        valid = " / ".join("yes" if v else "**no**" for v in x.get("valid_rounds", []))
        out += (
            f"| {x['level']} | {x['server']} | {_f(x.get('frames_per_viewer_per_s'), 1)}"
            f" ({_f(x.get('min_viewer_fps'), 1)}; {_f(x.get('camera_fps'), 1)}) | {valid}"
            f" | {_cell(x, 'machine_busy_pct', 1)} |\n"
        )
    return out


def body(lines: list[Line]) -> str:
    """The section's tables (without title and run context)."""
    first = next((x for x in lines if "level" in x or "mode" in x), None)
    if first is None:
        return "No result lines.\n"
    janus = first.get("janus", "janus")
    loops = next((x.get("event_loops") for x in lines if x.get("server") == "janus-tuned"), None)
    intro = (
        "**This is the headline comparison.** The same camera"
        f" ({first.get('camera', '')}) through videohub and through {janus} (streaming plugin, RTSP"
        f" source), measured in one run, the servers taking turns at every level. *Janus tuned* runs"
        f" `event_loops = {loops}` (one loop per core): the peer to beat; *Janus shipped* runs the"
        " packaged default. CPU is % of one core of the server process; per viewer is the increase over"
        " the same server with the feed running and nobody watching; the ratio is videohub's over Janus"
        " tuned (per viewer once there are viewers). Means of the rounds, each round in brackets.\n\n"
    )
    return intro + _cpu_table(lines) + _ttff_table(lines) + _turns_table(lines)
