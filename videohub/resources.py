"""Where the shipped web UI and default configuration live.

In a wheel (and the Docker image) ``web/`` and ``config/`` are packaged as ``videohub/_web`` and
``videohub/_config``; in a source checkout (editable install, tests) they sit beside the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(packaged: str, source: str) -> Path:
    inside = _PACKAGE / packaged
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / source


def web_dir() -> Path:
    return _find("_web", "web")


def config_dir() -> Path:
    return _find("_config", "config")


def default_config_path() -> Path:
    return config_dir() / "videohub.yaml"
