"""The simulator's start-up check of its GStreamer elements (issue 10: a missing ``clockoverlay`` made
every mount answer 503 on a new machine, and nothing said why)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.fixtures.camsim import CAMSIM_DIR, SYSTEM_PYTHON

pytestmark = pytest.mark.media

BOGUS = "videohubnosuchoverlay"


def test_a_missing_element_stops_the_simulator_at_once_with_its_name_and_package() -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [
            SYSTEM_PYTHON,
            str(CAMSIM_DIR),
            "--port",
            "0",
            "--auth-port",
            "0",
            "--control-port",
            "0",
            "--preset",
            "test",
            "--require-element",
            f"{BOGUS}=gstreamer1.0-bogus",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode != 0
    assert f"'{BOGUS}' is missing" in proc.stderr
    assert "gstreamer1.0-bogus" in proc.stderr
    # It never announced itself ready, so no client is handed mounts that would answer 503.
    assert '"event"' not in proc.stdout
    assert elapsed < 20, f"the check took {elapsed:.1f} s"


def test_the_same_simulator_without_the_bogus_element_starts() -> None:
    # The other half of the check above: the installed elements pass, so the failure was the bogus one.
    with subprocess.Popen(
        [SYSTEM_PYTHON, str(CAMSIM_DIR), "--port", "0", "--auth-port", "0", "--control-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            ready = json.loads(proc.stdout.readline())
            assert ready["event"] == "ready"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


_LIST_USED = r"""
import itertools, json, shlex, sys
sys.path.insert(0, sys.argv[1])
from camsim.elements import required_elements
from camsim.pipeline import launch_line
from camsim.spec import MountSpec

used = set()
for codec, audio, inband, profile, bframes in itertools.product(
    ("h264", "h265", "mjpeg"), ("none", "pcma"), (True, False), ("baseline", "main", "high"), (0, 2)
):
    if codec != "h264" and (profile != "main" or bframes or not inband):
        continue
    if profile == "baseline" and bframes:
        continue
    spec = MountSpec(
        name="x", codec=codec, audio=audio, inband_params=inband, profile=profile, bframes=bframes
    )
    text = launch_line(spec).strip().removeprefix("(").removesuffix(")")
    for segment in text.split("!"):
        tokens = shlex.split(segment)
        for i, token in enumerate(tokens):
            # The first word of a segment is an element (or caps); a later bare word starts a chain.
            if "=" not in token and "/" not in token:
                used.add(token)
print(json.dumps({"used": sorted(used), "table": [r.element for r in required_elements()]}))
"""


def test_the_element_table_covers_every_launch_line() -> None:
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-c", _LIST_USED, str(CAMSIM_DIR.parent)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    found = json.loads(proc.stdout)
    used, table = set(found["used"]), set(found["table"])
    assert {"clockoverlay", "x264enc", "rtph264pay", "h264parse", "alawenc"} <= used
    assert used <= table, f"elements used by the simulator but not in elements.txt: {sorted(used - table)}"
