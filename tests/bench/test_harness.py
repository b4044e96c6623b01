"""``bench/run`` keeps working: the quick registry benchmark through the harness, into a temp dir.

Runs the real command (a real ``videohub serve`` process, embedded Valkey) as a user would, and checks
what a reader of the results gets: enriched JSON lines with p50/p95 and the regenerated page. No timing
is asserted (timings are the benchmark's output, not a test's pass condition).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_registry_run_writes_results_and_page(tmp_path: Path) -> None:
    results = tmp_path / "results"
    repo_results = REPO / "bench" / "results" / "registry.jsonl"
    before = repo_results.read_bytes() if repo_results.exists() else b""
    proc = subprocess.run(
        [str(REPO / "bench" / "run"), "--only", "registry", "--quick", "--results", str(results)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    lines = [json.loads(t) for t in (results / "registry.jsonl").read_text().splitlines()]
    ops = {x["op"] for x in lines}
    assert {"list_page", "filter_line", "search_q", "get_one"} <= ops
    for x in lines:
        assert x["bench"] == "registry"
        assert x["p50_ms"] > 0 and x["p95_ms"] >= x["p50_ms"]
        assert x["machine"]["cores"] >= 1 and x["machine"]["cpu"]
        assert x["versions"]["aiortc"] and x["versions"]["av"] and x["commit"]["sha"]
        assert x["process"]["cpu_s"] > 0 and x["process"]["peak_rss_mb"] > 0 and x["process"]["quick"]
        assert len(x["loadavg"]["before"]) == 3

    page = (results / "performance.md").read_text()
    assert "Camera registry over HTTP" in page
    # The page's numbers are the result line's numbers.
    get_one = next(x for x in lines if x["op"] == "get_one")
    assert f"p95 {get_one['p95_ms']:g} ms" in page
    assert lines[0]["machine"]["cpu"] in page
    # The repository's own results were left alone.
    assert (repo_results.read_bytes() if repo_results.exists() else b"") == before


def test_results_pretty_printed_or_one_per_line_are_all_read() -> None:
    from bench.harness.runner import is_sample, parse_objects

    out = (
        'log line\n{"bench": "a", "p50_ms": 1}\n'
        '{\n  "bench": "b",\n  "nested": {"x": [1, 2]}\n}\n'
        '{"run": 3, "ms": 9}\n'
    )
    objects = parse_objects(out)
    assert [o["bench"] for o in objects if "bench" in o] == ["a", "b"]
    assert objects[1]["nested"] == {"x": [1, 2]}
    assert [o for o in objects if is_sample(o)] == [{"run": 3, "ms": 9}]


def test_page_says_a_benchmark_failed_and_which_were_not_run(tmp_path: Path) -> None:
    from bench.harness import page

    context = {
        "run_id": "20260101T000000Z",
        "date": "2026-01-01T00:00:00+00:00",
        "machine": {"cores": 2, "cpu": "Test CPU", "mem_gb": 1.0, "kernel": "6"},
        "versions": {"python": "3", "videohub": "0", "aiortc": "1", "av": "2"},
        "commit": {"sha": "abc", "dirty": False},
        "loadavg": {"before": [1.0, 1.0, 1.0], "after": [1.0, 1.0, 1.0]},
        "process": {
            "script": "bench/latency.py",
            "args": [],
            "quick": True,
            "wall_s": 1.0,
            "cpu_s": 1.0,
            "avg_cores": 1.0,
            "peak_rss_mb": 1.0,
        },
    }
    line = {"bench": "latency", "error": "timeout", **context}
    (tmp_path / "latency.jsonl").write_text(json.dumps(line) + "\n")
    text = page.render(tmp_path, tmp_path / "performance.md")
    assert "**Failed**: timeout" in text
    assert "Not run yet (`bench/run --only steady`)" in text
    assert "Test CPU" in text
