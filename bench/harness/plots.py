"""PNG figures for the performance page, drawn with matplotlib from the latest result lines only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on the bench box
import matplotlib.pyplot as plt

Line = dict[str, Any]


def _save(fig: Any, out_dir: Path, name: str) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=90)
    plt.close(fig)
    return name


def fanout(lines: list[Line], out_dir: Path) -> str | None:
    points = sorted(
        (x["viewers"], x["server_cpu_pct"], x.get("valid", True)) for x in lines if "server_cpu_pct" in x
    )
    if len(points) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label="server CPU (% of one core)")
    bad = [p for p in points if not p[2]]
    if bad:
        ax.plot(
            [p[0] for p in bad],
            [p[1] for p in bad],
            "rx",
            markersize=10,
            label="saturated (viewers short of frames)",
        )
    top = max(p[0] for p in points)
    ax.plot(
        [0, top],
        [points[0][1], points[0][1] + top * 1.0],
        "--",
        color="grey",
        label="goal: idle + 1 % per viewer",
    )
    ax.set_xlabel("viewers (WHEP tracks)")
    ax.set_ylabel("% of one core")
    ax.set_title("Fan-out: server CPU vs viewers")
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "perf_fanout_cpu.png")


def latency(lines: list[Line], out_dir: Path) -> str | None:
    curves = [x for x in lines if x.get("cdf_ms")]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for x in sorted(curves, key=lambda x: (x["camera"]["fps"], int(x["viewers"]))):
        cdf = x["cdf_ms"]  # value at each percentile 1..99
        label = f"{x['viewers']} viewers, {x['camera']['fps']} fps" + (
            " (saturated)" if x.get("saturated") else ""
        )
        ax.plot(cdf, list(range(1, len(cdf) + 1)), label=label)
    for interval in sorted({x["frame_interval_ms"] for x in curves if x.get("frame_interval_ms")}):
        ax.axvline(interval, color="grey", linestyle=":", label=f"one frame interval ({interval} ms)")
    ax.set_xlabel("added latency, ms (packet read from camera → frame decoded)")
    ax.set_ylabel("percentile")
    ax.set_title("Added latency distribution")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "perf_latency.png")


def ttff(groups: dict[str, list[Line]], out_dir: Path) -> str | None:
    rows = [
        (
            f"{name.replace('ttff_', '').replace('ttff', 'aiortc')} {x['mode']}"
            f"\nGOP {x.get('camera', {}).get('gop_s', '?')} s",
            x,
        )
        for name, lines in groups.items()
        for x in lines
        if "p50_ms" in x
    ]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.5))
    idx = range(len(rows))
    ax.bar([i - 0.2 for i in idx], [r[1]["p50_ms"] for r in rows], 0.4, label="p50")
    ax.bar([i + 0.2 for i in idx], [r[1]["p95_ms"] for r in rows], 0.4, label="p95")
    ax.axhline(300, color="grey", linestyle="--", label="warm goal p95 300 ms")
    ax.set_ylim(0, max(max(r[1]["p95_ms"] for r in rows), 300) * 1.4)  # room for the legend
    ax.set_xticks(list(idx), [r[0] for r in rows], fontsize=7)
    ax.set_ylabel("ms")
    ax.set_title("Time to first frame")
    ax.legend(fontsize=8, ncol=3, loc="upper left")
    return _save(fig, out_dir, "perf_ttff.png")


def wall(lines: list[Line], out_dir: Path) -> str | None:
    """Issue 16: cold tile → latest picture vs live video, and tour switch → live on all tiles."""
    rows: list[tuple[str, float, float]] = []
    for x in lines:
        if x.get("mode") == "cold_picture":
            rows.append(("cold tile:\nlatest picture", x["p50_ms"], x["p95_ms"]))
            rows.append(("cold tile:\nlive video", x["live"]["p50_ms"], x["live"]["p95_ms"]))
        elif x.get("mode") == "tour_switch":
            rows.append((f"tour switch:\nall {x['tiles']} tiles live", x["p50_ms"], x["p95_ms"]))
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    idx = range(len(rows))
    ax.bar([i - 0.2 for i in idx], [r[1] for r in rows], 0.4, label="p50")
    ax.bar([i + 0.2 for i in idx], [r[2] for r in rows], 0.4, label="p95")
    ax.axhline(300, color="grey", linestyle="--", label="goal 300 ms")
    ax.set_yscale("log")
    ax.set_xticks(list(idx), [r[0] for r in rows], fontsize=8)
    ax.set_ylabel("ms (log)")
    ax.set_title("Wall in Chromium: picture at once, tours on warm feeds")
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, out_dir, "perf_wall.png")


def steady(lines: list[Line], out_dir: Path) -> str | None:
    runs = [x for x in lines if x.get("samples")]
    if not runs:
        return None
    samples = runs[0]["samples"]
    t = [s["t_s"] / 60 for s in samples]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(t, [s["rss_mb"] for s in samples], "b-", label="RSS (MB)")
    ax.set_xlabel("minutes")
    ax.set_ylabel("service RSS, MB")
    ax2 = ax.twinx()
    ax2.plot(t, [s["fds"] for s in samples], "g--", label="open fds")
    ax2.set_ylabel("open file descriptors")
    # From zero: a flat line must look flat, not like a cliff at the scale of a few MB.
    ax.set_ylim(0, max(s["rss_mb"] for s in samples) * 1.3)
    ax2.set_ylim(0, max(s["fds"] for s in samples) * 1.6)
    ax.set_title("Steady state: service RSS and fds")
    fig.legend(fontsize=8, loc="lower right")
    return _save(fig, out_dir, "perf_steady.png")


PEERS = (
    ("videohub", "videohub", "C0"),
    ("janus-tuned", "Janus tuned", "C1"),
    ("janus-shipped", "Janus shipped", "C2"),
)


def peers(lines: list[Line], out_dir: Path) -> str | None:
    """The headline figure: server CPU vs viewers for the three servers; warm time to first frame."""
    cpu = [x for x in lines if "level" in x and x["level"] != "none"]
    if not cpu:
        return None
    ttff = [x for x in lines if x.get("mode") == "warm_ttff"]
    fig, axes = plt.subplots(1, 2 if ttff else 1, figsize=(10 if ttff else 6, 3.8), squeeze=False)
    ax = axes[0][0]
    for server, label, colour in PEERS:
        points = sorted((x["viewers"], x) for x in cpu if x["server"] == server)
        if not points:
            continue
        ax.plot(
            [v for v, _ in points], [x["server_cpu_pct"] for _, x in points], "o-", color=colour, label=label
        )
        for v, x in points:  # each round, small
            rounds = x.get("server_cpu_pct_rounds") or []
            ax.plot([v] * len(rounds), rounds, ".", color=colour, alpha=0.5)
            if not x.get("valid", True):
                ax.plot([v], [x["server_cpu_pct"]], "rx", markersize=10)
    ax.set_xlabel("viewers (one 720p25 ~2 Mbit/s camera)")
    ax.set_ylabel("server CPU, % of one core")
    ax.set_title("Server CPU vs viewers (red x: a round invalid)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if ttff:
        ax2 = axes[0][1]
        idx = range(len(ttff))
        ax2.bar([i - 0.2 for i in idx], [x["p50_ms"] for x in ttff], 0.4, label="p50")
        ax2.bar([i + 0.2 for i in idx], [x["p95_ms"] for x in ttff], 0.4, label="p95")
        names = [f"{x.get('viewer', 'aiortc')}: {x['label']}".replace(", ", "\n") for x in ttff]
        ax2.set_xticks(list(idx), names, fontsize=6)
        ax2.set_ylabel("ms")
        gop = ttff[0].get("camera", {}).get("gop_s", "?")
        ax2.set_title(f"Warm time to first frame (GOP {gop} s)")
        ax2.legend(fontsize=8)
    return _save(fig, out_dir, "perf_peers.png")


def draw(latest: dict[str, list[Line]], out_dir: Path) -> list[tuple[str, str]]:
    """Draw what the results allow; return (file name, alt text) pairs, file names relative to the page."""
    out: list[tuple[str, str]] = []
    made = [
        (fanout(latest.get("fanout_cpu", []), out_dir), "server CPU vs viewers"),
        (latency(latest.get("latency", []), out_dir), "added latency distributions"),
        (
            ttff({k: latest[k] for k in ("ttff", "ttff_chromium") if k in latest}, out_dir),
            "time to first frame",
        ),
        (steady(latest.get("steady", []), out_dir), "steady-state RSS and fds"),
        (wall(latest.get("wall_chromium", []), out_dir), "wall: cold picture and tour switch"),
    ]
    for name, alt in made:
        if name is not None:
            out.append((name, alt))
    return out
