"""The wheel carries the UI and the default configuration, so an installed copy serves them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_ships_web_and_config_and_a_console_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("videohub-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "videohub/_web/console.html",
        "videohub/_web/common/api.js",
        "videohub/_web/health.html",
        "videohub/_config/videohub.yaml",
        "videohub/cli.py",
        "ingest/source.py",
    ):
        assert expected in names, expected
    assert not any(name.startswith(("tests/", "tools/", "bench/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "videohub = videohub.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
