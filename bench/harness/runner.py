"""Run one benchmark script as a child process and turn what it prints into enriched result lines.

CPU and memory are measured from outside by the OS: ``os.wait4`` returns the child's rusage, which
includes every descendant it reaped (the service process, the camera simulator, viewer processes), so
``cpu_s`` is the whole benchmark tree's user+system time and ``peak_rss_mb`` the largest process in it.
The scripts' own figures (for example the server's CPU read from /proc) stay in their fields.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from .specs import Spec

REPO = Path(__file__).resolve().parents[2]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
    }


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("videohub", "aiortc", "av", "fastapi", "playwright"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return result.stdout.strip()

    return {
        "sha": git("rev-parse", "--short=12", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def parse_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in the output: one per line, or pretty-printed over many lines."""
    decoder = json.JSONDecoder()
    objects: list[dict[str, Any]] = []
    i = 0
    while True:
        start = text.find("{", i)
        if start < 0:
            return objects
        try:
            obj, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            i = start + 1
            continue
        if isinstance(obj, dict):
            objects.append(obj)
        i = end


def is_sample(obj: dict[str, Any]) -> bool:
    # Per-run progress lines (ttff prints {"run": 3, "ms": …}) are summarised by the script itself.
    return isinstance(obj.get("run"), int) and not any(k.startswith("p50") for k in obj)


def descendants(root: int) -> dict[int, bytes]:
    """Every live descendant of ``root`` (pid → command line), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, bytes] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        todo += children.get(pid, [])
    return found


def stop_tree(pid: int) -> tuple[int, Any]:
    """Stop a timed-out benchmark and everything it started; return its wait status and rusage.

    SIGINT first, so the script's ``finally`` blocks stop the service and the simulator; SIGKILL after
    15 s. Helpers that run in their own session (the service, the simulator) escape the process group,
    so the tree is listed beforehand and what still runs afterwards is killed by pid.
    """
    tree = descendants(pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGINT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        reaped, status, usage = os.wait4(pid, os.WNOHANG)
        if reaped:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
    time.sleep(2)  # let orphaned helpers finish their own shutdown
    for child, cmdline in tree.items():
        try:
            if Path(f"/proc/{child}/cmdline").read_bytes() == cmdline:
                os.kill(child, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass
    return status, usage


def _pump(stream: IO[str], sink: list[str], echo: IO[str] | None) -> None:
    for line in stream:
        sink.append(line)
        if echo is not None:
            echo.write(line)
            echo.flush()


def run_invocation(
    spec: Spec, args: list[str], *, quick: bool, run_id: str, echo: bool = True
) -> list[dict[str, Any]]:
    """Run the script once; return its result objects enriched (or one error object)."""
    argv = [sys.executable, str(REPO / "bench" / spec.script), *args]
    timeout = spec.quick_timeout_s if quick else spec.timeout_s
    load_before = os.getloadavg()
    code = commit()  # the code the benchmark started with (the tree may change while it runs)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    out: list[str] = []
    with tempfile.TemporaryFile("w+") as err:
        # Own session: on a timeout the whole tree (service, simulator, viewers) is killed by its id.
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert proc.stdout is not None
        reader = threading.Thread(
            target=_pump, args=(proc.stdout, out, sys.stdout if echo else None), daemon=True
        )
        reader.start()
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                timed_out = True
                status, usage = stop_tree(proc.pid)
                break
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
        reader.join(timeout=10)
        err.seek(0)
        stderr_tail = err.read()[-3000:]
    wall = time.monotonic() - started
    measured = {
        "script": f"bench/{spec.script}",
        "args": args,
        "quick": quick,
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "cpu_user_s": round(usage.ru_utime, 2),
        "cpu_sys_s": round(usage.ru_stime, 2),
        "avg_cores": round((usage.ru_utime + usage.ru_stime) / max(wall, 1e-9), 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit": proc.returncode,
    }
    context = {
        "run_id": run_id,
        "date": started_at.isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "commit": code,
        "loadavg": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "process": measured,
    }
    objects = [o for o in parse_objects("".join(out)) if not is_sample(o)]
    measured["timed_out"] = timed_out
    if objects and (timed_out or proc.returncode != 0):
        # Results printed before a hang in teardown are still measurements; the flag says what happened.
        measured["incomplete"] = True
        return [{**obj, "bench": spec.name, **context} for obj in objects]
    if not objects:
        reason = "timeout" if timed_out else f"exit {proc.returncode}" if proc.returncode else "no results"
        return [{"bench": spec.name, "error": reason, "stderr_tail": stderr_tail, **context}]
    return [{**obj, "bench": spec.name, **context} for obj in objects]


def append(results_dir: Path, name: str, lines: list[dict[str, Any]]) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.jsonl"
    with path.open("a", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path
