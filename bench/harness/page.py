"""``docs/performance.md`` from the latest result lines: one table per benchmark, goals beside values.

Every number on the page is read from a line of ``bench/results/<name>.jsonl`` (the lines of the most
recent harness run of that benchmark); goals are the issues' targets, quoted beside the measurement.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import headline, plots
from .specs import SPECS

Line = dict[str, Any]
Row = tuple[str, str, str, str]  # measurement, value, goal, met


def load_latest(results_dir: Path, name: str, *, successful: bool = False) -> list[Line]:
    """The lines of the newest harness run in ``<name>.jsonl`` (older, unenriched lines are skipped);
    with ``successful``, of the newest run that has no error line."""
    path = results_dir / f"{name}.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(t) for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
    lines = [x for x in lines if "run_id" in x]
    if successful:
        failed = {x["run_id"] for x in lines if "error" in x}
        lines = [x for x in lines if x["run_id"] not in failed]
    if not lines:
        return []
    latest = max(x["run_id"] for x in lines)
    return [x for x in lines if x["run_id"] == latest]


def table(lines: list[Line], rows_of: Callable[[list[Line]], Iterator[Row]]) -> str:
    body = ["| measurement | value | goal | met |", "|---|---|---|---|"]
    body += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows_of(lines)]
    return "\n".join(body) + "\n"


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:,.{3 if abs(value) < 10 else 2}f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text} {unit}".strip()


def met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def _registry(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        yield (
            f"{x['op']} at {x['cameras']:,} cameras ({x['requests']} requests)",
            f"p50 {fmt(x['p50_ms'])} / p95 {fmt(x['p95_ms'])} ms",
            f"p95 ≤ {x['goal_p95_ms']} ms",
            met(x["p95_ms"] <= x["goal_p95_ms"]),
        )


def _ingest(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        if x.get("mode") == "passthrough" and x.get("streaming", 0) < x.get("cameras", 0):
            yield (
                f"**round {x['round']}: only {x['streaming']} of {x['cameras']} sources streamed**"
                " (the CPU figures below do not measure streaming)",
                "",
                "",
                "**no**",
            )
        if x.get("mode") == "ratio":
            yield (
                "passthrough CPU per camera (median of rounds)",
                fmt(x["passthrough_percent_per_camera"], "% of a core"),
                "",
                "",
            )
            yield (
                "`ffmpeg -c copy -f null` CPU per camera",
                fmt(x["ffmpeg_percent_per_camera"], "% of a core"),
                "",
                "",
            )
            yield ("ratio passthrough / ffmpeg", fmt(x["value"]), f"≤ {x['goal']}", met(x["met"]))
        elif x.get("mode") == "passthrough_with_health":
            yield (
                f"whole per-camera cost with health monitoring and diagnosis on ({x['cameras']} cameras)",
                fmt(x["cpu_percent_per_camera"], "% of a core"),
                "",
                "",
            )
        elif x.get("mode") == "transcode":
            yield (
                f"transcode CPU per feed ({x['stream']})",
                fmt(x["cpu_percent_per_feed"], "% of a core"),
                "",
                "",
            )


def _fanout(lines: list[Line]) -> Iterator[Row]:
    for x in sorted(lines, key=lambda x: int(x["viewers"])):
        if x["viewers"] == 0:
            yield ("server CPU, feed running, no viewer", fmt(x["server_cpu_pct"], "% of a core"), "", "")
            continue
        rate = x["frames_received_per_viewer_per_s"]
        note = "" if x.get("valid") else " (saturated: viewers got fewer frames than sent)"
        yield (
            f"{x['viewers']} viewers: server CPU {fmt(x['server_cpu_pct'])} %,"
            f" {fmt(rate)} frames/s each{note}",
            fmt(x["per_viewer_cpu_pct"], "% of a core per viewer"),
            f"≤ {x['goal_per_viewer_pct']} %",
            met(x["per_viewer_cpu_pct"] <= x["goal_per_viewer_pct"] and bool(x.get("valid"))),
        )


def _ttff(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        if "p50_ms" not in x:
            continue
        gop = x.get("camera", {}).get("gop_s", x.get("gop_s"))
        goal = x.get("goal_p95_ms")
        yield (
            f"{x.get('viewer', 'aiortc')} {x['mode']}, GOP {fmt(gop)} s ({x['runs']} runs)",
            f"p50 {fmt(x['p50_ms'])} / p95 {fmt(x['p95_ms'])} / max {fmt(x['max_ms'])} ms",
            f"p95 ≤ {goal} ms" if goal else "",
            met(x["p95_ms"] <= goal) if goal else "",
        )


def _wall(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        gop = fmt(x.get("camera", {}).get("gop_s"))
        goal = x.get("goal_p95_ms", 300)
        if x.get("mode") == "cold_picture":
            yield (
                f"cold on_demand camera put on a tile → its latest picture painted ({x['runs']} runs,"
                f" GOP {gop} s)",
                f"p50 {fmt(x['p50_ms'])} / p95 {fmt(x['p95_ms'])} / max {fmt(x['max_ms'])} ms",
                f"p95 ≤ {goal} ms",
                met(x["pictures"] == x["runs"] and x["p95_ms"] <= goal),
            )
            live = x["live"]
            yield (
                "… the same tile's first live frame (the camera's next keyframe)",
                f"p50 {fmt(live['p50_ms'])} / p95 {fmt(live['p95_ms'])} ms",
                "",
                "",
            )
            yield (
                "… picture shown before the live video",
                f"{x['picture_before_live']} of {x['runs']}",
                "all",
                "",
            )
        elif x.get("mode") == "tour_switch":
            yield (
                f"tour switch → live video on all {x['tiles']} tiles ({x['runs']} switches, 18 on_demand"
                f" cameras, GOP {gop} s, dwell {x['dwell_s']} s)",
                f"p50 {fmt(x['p50_ms'])} / p95 {fmt(x['p95_ms'])} / max {fmt(x['max_ms'])} ms",
                f"p95 ≤ {goal} ms",
                met(x["p95_ms"] <= goal),
            )
            yield (
                "… tiles that took over a feed opened early / already live at the switch",
                f"{fmt(100 * x['warmed_fraction'])} % / {fmt(100 * x['live_at_switch_fraction'])} %",
                "",
                "",
            )


def _alert(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        for key, label in (
            ("alert_latency_s", "alert after the camera stops"),
            ("picture_back_latency_s", "picture back after it returns"),
        ):
            s = x[key]
            ok = None if s["p95"] is None else s["p95"] <= 3.0
            yield (
                f"{label} ({s['n']} events, fault `{x['fault']}`)",
                f"p50 {fmt(s['p50'])} / p95 {fmt(s['p95'])} s",
                "p95 ≤ 3 s",
                met(ok),
            )
        yield ("alerts missed", fmt(x["alerts_missed"]), "0", met(x["alerts_missed"] == 0))


def _diagnosis(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        service = x.get("service")
        where = "in a `videohub serve`" if service else "isolated"
        yield (
            f"keyframe diagnosis / full decode CPU, {where} ({x['stream']},"
            f" one check per {fmt(x['diagnosis_interval_s'])} s)",
            fmt(x["fraction"]),
            "≤ 0.05",
            met(x["goal_met"]),
        )
        if service:
            yield (
                f"… diagnosis per camera ({service['cameras']} cameras) / `ffmpeg -threads 1` decode",
                f"{fmt(service['diagnosis_pct_per_camera'])} / {fmt(service['full_decode_pct_per_camera'])}"
                " % of a core",
                "",
                "",
            )
            yield ("… the same, isolated in one process (precise)", fmt(x.get("isolated_fraction")), "", "")


def _probe(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        n = x["cameras"]
        yield (
            f"probe cycle, {n:,} cameras ({x['mix']})",
            fmt(x["cycle_s"], "s"),
            "≤ 300 s at 10,000",
            met(bool(x["goal_met"]) if n >= 10_000 else None),
        )
        if n < 10_000:
            yield (
                "linear projection to 10,000 cameras",
                fmt(x["linear_projection_10000_s"], "s"),
                "≤ 300 s",
                "",
            )
        yield (
            "cameras in the wrong state after the cycle",
            fmt(x["cameras_in_wrong_state"]),
            "0",
            met(x["cameras_in_wrong_state"] == 0),
        )


def _latency(lines: list[Line]) -> Iterator[Row]:
    for x in sorted(lines, key=lambda x: (x["camera"]["fps"], int(x.get("viewers", 0)))):
        if "p50_ms" not in x:
            yield (
                f"{x['viewers']} viewers: **no frame matched** its read ({x['unmatched']:,} unmatched,"
                f" {x.get('unmatched_seen_later_by_tap', '?')} seen by the tap only later)",
                "—",
                "",
                "",
            )
            continue
        flag = " **saturated**" if x.get("saturated") else ""
        where = (
            f"{x['viewers']} viewers of a {x['camera']['fps']} fps camera,"
            f" {x['frames_per_viewer_per_s']} frames/s each, machine"
            f" {fmt(x['machine_busy_pct'])} % busy{flag}"
        )
        yield (
            f"{where}: read → frame decoded ({x['decoding_viewers']} decoding viewers)",
            f"p50 {fmt(x['p50_ms'])} / p95 {fmt(x['p95_ms'])} / p99 {fmt(x['p99_ms'])} ms",
            "none set",
            "",
        )
        yield (
            f"{x['viewers']} viewers: read → last packet of the frame at the viewer (all viewers,"
            f" {x['matched']:,} frames); decode alone p50 {fmt(x.get('decode_p50_ms'))} ms",
            f"p50 {fmt(x['delivered_p50_ms'])} / p95 {fmt(x['delivered_p95_ms'])}"
            f" / p99 {fmt(x['delivered_p99_ms'])} ms",
            f"(frame interval {fmt(x['frame_interval_ms'])} ms)",
            "",
        )
        if "tap_control_p50_ms" in x:
            yield (
                f"{x['viewers']} viewers: control, second tap − reference tap (same packets)",
                f"p50 {fmt(x['tap_control_p50_ms'])} ms,"
                f" p99 of the absolute skew {fmt(x['tap_control_p99_abs_ms'])} ms",
                "≈ 0",
                "",
            )


def _steady(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        if "rss_mb" not in x:
            continue
        yield (
            f"service RSS over {fmt(x['minutes'])} min ({x['cameras']} cameras, {x['viewers']} viewers)",
            f"{fmt(x['rss_mb']['first'])} → {fmt(x['rss_mb']['last'])} MB (max {fmt(x['rss_mb']['max'])})",
            "no growth",
            "",
        )
        yield ("RSS growth, second half of the run", fmt(x["rss_growth_mb_second_half"], "MB"), "≈ 0", "")
        yield (
            "open file descriptors",
            f"{x['fds']['first']} → {x['fds']['last']} (max {x['fds']['max']})",
            "no growth",
            met(x["fds"]["last"] <= x["fds"]["first"] + 4),
        )
        yield (
            "frames received per viewer per s (last sample)",
            fmt(x.get("frames_per_viewer_per_s")),
            "",
            "",
        )


def _soak(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        if "rss_mb" not in x:
            continue
        load = (
            f"{x['cameras']} cameras ({x['flapping_cameras']} flapping, {x['flaps']} outages),"
            f" {x['viewers']} viewers ({x['viewers_joined']} joined), {x['ws_clients']} /ws clients,"
            f" {fmt(x['requests'])} API requests"
        )
        yield (f"load over {fmt(x['minutes'])} min", load, "", "")
        yield (
            "service RSS growth, second half",
            f"{fmt(x['rss_growth_pct_second_half'])} %"
            f" ({fmt(x['rss_mb']['mid'])} → {fmt(x['rss_mb']['last'])} MB)",
            "≤ 5 %",
            met(x["rss_growth_pct_second_half"] <= 5.0),
        )
        yield (
            "fds growth, second half",
            fmt(x["fds_growth_second_half"]),
            "flat",
            met(x["fds_growth_second_half"] <= 5),
        )
        yield (
            "threads growth, second half",
            fmt(x["threads_growth_second_half"]),
            "flat",
            met(x["threads_growth_second_half"] <= 2),
        )
        yield ("HTTP 5xx", fmt(x["http_5xx"]), "0", met(x["http_5xx"] == 0))
        yield (
            "slowest viewer, any period",
            fmt(x["min_viewer_fps"], "fps"),
            "≥ 9 fps (camera 10)",
            met(x["min_viewer_fps"] >= 9),
        )


def _fuzz(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        if "cases" not in x:
            continue
        yield (
            "generated requests (admin + line_admin, valid + invalid)",
            f"{fmt(x['cases'])} over {x['operations']} operations",
            "≥ 2,000",
            met(x["cases"] >= 2000),
        )
        yield ("5xx answers", fmt(x["server_errors"]), "0", met(x["server_errors"] == 0))
        yield ("answers carrying a planted secret", fmt(x["leaks"]), "0", met(x["leaks"] == 0))


def _sentinel(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        if x.get("op") == "failover":
            yield (
                f"kill -9 of the primary → first acknowledged API write, p95 over {x['kills']} kills",
                f"{fmt(x['p95_s'], 's')} (p50 {fmt(x['p50_s'], 's')}, max {fmt(x['max_s'], 's')})",
                f"≤ {fmt(x['goal_s'], 's')}",
                met(x["max_s"] <= x["goal_s"]),
            )
            bad = x["http_5xx_not_503"] + x["503_without_retry_after"]
            yield ("5xx other than 503, or 503 without Retry-After", fmt(bad), "0", met(bad == 0))
            yield (
                f"acknowledged writes lost (of {fmt(x['acked_writes'])})",
                fmt(x["lost_acked_writes"]),
                "0",
                met(x["lost_acked_writes"] == 0),
            )
        elif x.get("op") == "wait_cost":
            wait = x["replica_wait_ms"]
            yield (
                f"camera transaction, {'WAIT 1 ' + str(wait) + ' ms' if wait else 'no WAIT'}, p50 / p95",
                f"{fmt(x['p50_ms'], 'ms')} / {fmt(x['p95_ms'], 'ms')}",
                "—",
                met(None),
            )


def _cluster(lines: list[Line]) -> Iterator[Row]:
    for x in lines:
        op = x.get("op")
        if op in ("failover", "handover") and x.get("p95_s") is not None:
            yield (
                f"{x['what']}, p95 over {x['measured']} of {x['rounds']} rounds",
                f"{fmt(x['p95_s'], 's')} (p50 {fmt(x['p50_s'], 's')}, max {fmt(x['max_s'], 's')})",
                f"≤ {fmt(x['goal_p95_s'], 's')}",
                met(x["p95_s"] <= x["goal_p95_s"] and x["failed_rounds"] == 0),
            )
        elif op == "capacity_level":
            yield (
                f"{x['workers']} worker(s), {x['cameras']} cameras, {x['viewers']} viewers: at ≥ 90 % of "
                f"{x['camera_fps']} fps",
                f"{fmt(x['viewers_at_90'])} (service {fmt(x['service_cpu_pct'], '%')}, machine "
                f"{fmt(x['machine_busy_pct'], '%')} busy)",
                "—",
                met(None),
            )
        elif op == "capacity":
            ratio = x["ratio"]
            yield (
                "viewers at ≥ 90 % of the frames: --workers 2 against 1 worker"
                + ("" if x["saturated_one_worker"] else " (1 worker not saturated: levels too low)"),
                f"{fmt(x['viewers_at_90_two_workers'])} / {fmt(x['viewers_at_90_one_worker'])} = "
                + (f"{fmt(ratio)}x" if ratio is not None else "—"),
                f"≥ {fmt(x['goal_ratio'])}x",
                met(ratio is not None and x["saturated_one_worker"] and ratio >= x["goal_ratio"]),
            )


TITLES: dict[str, tuple[str, Callable[[list[Line]], Iterator[Row]]]] = {
    "registry": ("Camera registry over HTTP (issue 2)", _registry),
    "ingest_cpu": ("Ingest CPU: passthrough vs ffmpeg, transcode (issue 3)", _ingest),
    "fanout_cpu": ("WHEP fan-out: server CPU per viewer track, 720p ~2 Mbit/s (issue 4)", _fanout),
    "ttff": ("Time to first frame, aiortc viewer (issue 4)", _ttff),
    "ttff_chromium": ("Time to first frame, Chromium (issue 4)", _ttff),
    "wall_chromium": ("The wall never shows black: cold picture and tour switch, Chromium (issue 16)", _wall),
    "latency": ("Added latency: camera packet read → frame decoded at a viewer (issue 6)", _latency),
    "alert_latency": ("Alert and picture-back latency (issue 5)", _alert),
    "diagnosis_cpu": ("Keyframe diagnosis cost (issue 5)", _diagnosis),
    "probe_cycle": ("Probe cycle over on-demand cameras (issue 5)", _probe),
    "steady": ("Steady state: memory and file descriptors (issue 6)", _steady),
    "soak": ("Soak: an hour of flapping cameras, churning viewers and open pages (issue 12)", _soak),
    "fuzz": ("API fuzz from the OpenAPI schema (issue 11)", _fuzz),
    "sentinel": ("Redis Sentinel failover (issue 14)", _sentinel),
    "cluster": ("Failover: workers sharing the cameras (issue 14)", _cluster),
    "cluster_capacity": ("Scale-out: viewers served by 1 worker and by --workers 2 (issue 14)", _cluster),
}


def context_line(lines: list[Line]) -> str:
    first = lines[0]
    procs = {json.dumps(x["process"], sort_keys=True): x["process"] for x in lines}.values()
    runs = "; ".join(
        f"`{p['script']} {' '.join(p['args'])}`: {fmt(p['wall_s'])} s wall, {fmt(p['cpu_s'])} CPU s"
        f" ({fmt(p['avg_cores'])} cores), peak RSS {fmt(p['peak_rss_mb'])} MB"
        for p in procs
    )
    load = first["loadavg"]["before"][0]
    quick = " — **quick run** (reduced sizes)" if first["process"]["quick"] else ""
    if any(x["process"].get("incomplete") for x in lines):
        quick += " — **the process did not end cleanly** (timeout or error after printing these results)"
    when = f"{first['date']}, commit `{first['commit']['sha']}`"
    return f"_{when}, load average before {load}{quick}._ Runs: {runs}."


def _headline(results_dir: Path, out_dir: Path) -> tuple[str, list[Line]]:
    """The headline section (``bench/peers.py``), with its plot under its tables."""
    title = f"### {headline.TITLE}\n\n"
    lines = load_latest(results_dir, "peers")
    if not lines:
        return title + "Not run yet (`bench/run --only peers`).\n", []
    text = title + context_line(lines) + "\n\n"
    errors = [x for x in lines if "error" in x]
    if errors:
        text += f"**Failed**: {errors[0]['error']}.\n"
        lines = load_latest(results_dir, "peers", successful=True)
        if not lines:
            return text, []
        text += f"\nThe latest successful run: {context_line(lines)}\n\n"
    text += headline.body(lines)
    figure = plots.peers(lines, out_dir)
    if figure is not None:
        text += f"\n![videohub against Janus: server CPU and time to first frame]({figure})\n"
    return text, lines


def render(results_dir: Path, page: Path) -> str:
    top, peers = _headline(results_dir, page.parent)
    sections: list[str] = [top]
    latest: dict[str, list[Line]] = {"peers": peers} if peers else {}
    for spec in SPECS:
        if spec.name == "peers":
            continue  # the headline, above the others
        lines = load_latest(results_dir, spec.name)
        title, rows_of = TITLES[spec.name]
        if not lines:
            sections.append(f"### {title}\n\nNot run yet (`bench/run --only {spec.name}`).\n")
            continue
        latest[spec.name] = lines
        errors = [x for x in lines if "error" in x]
        if errors:
            text = f"### {title}\n\n{context_line(lines)}\n\n**Failed**: {errors[0]['error']}.\n"
            good = load_latest(results_dir, spec.name, successful=True)
            if good:
                text += f"\nThe latest successful run: {context_line(good)}\n\n" + table(good, rows_of)
            sections.append(text)
            continue
        sections.append(f"### {title}\n\n{context_line(lines)}\n\n" + table(lines, rows_of))
    figures = plots.draw(latest, page.parent)
    any_line = next((v[0] for v in latest.values()), None)
    head = HEADER
    if any_line is not None:
        m, v = any_line["machine"], any_line["versions"]
        head += (
            f"**Machine**: {m['cores']} cores, {m['cpu']}, {m['mem_gb']} GB RAM, Linux {m['kernel']}. "
            f"**Versions**: Python {v['python']}, videohub {v['videohub']}, aiortc {v['aiortc']},"
            f" PyAV {v['av']}.\n\n"
        )
    figs = "".join(f"![{alt}]({name})\n\n" for name, alt in figures)
    text = head + "## Results\n\n" + "\n".join(sections) + "\n## Figures\n\n" + figs + METHOD
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text, encoding="utf-8")
    return text


HEADER = """# Performance

Generated by `bench/run` from the latest lines of `bench/results/*.jsonl`; do not edit by hand.
Every benchmark runs as its own process against the camera simulator (a real RTSP server) and a real
`videohub serve` process, measured from outside (the service's figures from `/proc` and its HTTP API;
CPU seconds and peak RSS of the benchmark's process tree from the OS). Each result line also carries
the machine, versions, commit, date and the load average before and after, so a reader can judge
the noise: the box is shared with other work.

"""

METHOD = (Path(__file__).with_name("method.md")).read_text(encoding="utf-8")
