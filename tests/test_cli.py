"""The videohub command: validate-config, and user management against the embedded Valkey."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VIDEOHUB = [sys.executable, "-m", "videohub.cli"]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIDEOHUB, *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_validate_config_accepts_the_shipped_file() -> None:
    result = run("validate-config")
    assert result.returncode == 0, result.stderr
    assert "4 lines" in result.stdout


def test_validate_config_names_every_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "server:\n  port: 70000\n  hots: 0.0.0.0\n"
        "lines:\n  - {id: Public, name_zh: 公安, name_en: PS, color: blue}\n"
        "ingest:\n  stall_timeout: -1\n",
        encoding="utf-8",
    )
    result = run("validate-config", "--config", str(bad))
    assert result.returncode == 1
    for expected in (
        "server.port:",
        "server.hots: unknown key",
        "lines.0.id: must be a lowercase slug",
        "lines.0.color: must be a colour",
        "ingest.stall_timeout:",
    ):
        assert expected in result.stderr, result.stderr


def test_validate_config_on_unreadable_or_non_yaml(tmp_path: Path) -> None:
    assert "cannot read" in run("validate-config", "--config", str(tmp_path / "missing.yaml")).stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("server: [unclosed\n", encoding="utf-8")
    result = run("validate-config", "--config", str(broken))
    assert result.returncode == 1 and "not valid YAML" in result.stderr


def test_user_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    added = run(
        "user",
        "add",
        "zhang",
        "--role",
        "line_admin",
        "--line",
        "environment",
        "--password-stdin",
        "--data-dir",
        data,
        stdin="zhang-pass-1\n",
    )
    assert added.returncode == 0, added.stderr
    bad = run(
        "user",
        "add",
        "li",
        "--role",
        "line_admin",
        "--password-stdin",
        "--data-dir",
        data,
        stdin="li-pass-123\n",
    )
    assert bad.returncode == 1 and "needs a line" in bad.stderr
    listed = run("user", "list", "--data-dir", data)
    assert "zhang\tline_admin\tenvironment" in listed.stdout
    assert "zhang-pass-1" not in listed.stdout
    assert (
        run(
            "user", "passwd", "zhang", "--password-stdin", "--data-dir", data, stdin="new-pass-99\n"
        ).returncode
        == 0
    )
    assert run("user", "remove", "zhang", "--data-dir", data).returncode == 0
    assert "zhang" not in run("user", "list", "--data-dir", data).stdout
    assert run("user", "remove", "zhang", "--data-dir", data).returncode == 1
