"""The simulator's start-up check: every GStreamer element its launch lines use must be installed.

A missing element does not fail when the server starts: gst-rtsp-server builds a mount's pipeline at
the first DESCRIBE and answers ``503 Service Unavailable`` when that fails, so a simulator without
``clockoverlay`` (Debian's ``gstreamer1.0-x``) looked healthy and served nothing (71 tests failed on a
new machine). The table lives in ``elements.txt``, which ``tools/setup`` reads too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "elements.txt"


@dataclass(frozen=True)
class Required:
    element: str
    package: str


def required_elements(table: Path = TABLE) -> list[Required]:
    """The (element, Debian package) rows of ``elements.txt``, in file order."""
    rows: list[Required] = []
    for line in table.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            if len(fields) != 2:
                raise ValueError(f"{table}: expected 'element package', got {line!r}")
            rows.append(Required(fields[0], fields[1]))
    return rows


def parse_extra(values: list[str]) -> list[Required]:
    """``--require-element NAME[=PACKAGE]`` values (a test hook for a deliberately missing element)."""
    extra = []
    for value in values:
        name, _, package = value.partition("=")
        extra.append(Required(name.strip(), package.strip() or "(unknown package)"))
    return extra


def missing_elements(required: list[Required]) -> list[Required]:
    """The rows whose element GStreamer cannot find (``Gst.init`` must have run)."""
    from gi.repository import Gst

    return [row for row in required if Gst.ElementFactory.find(row.element) is None]
