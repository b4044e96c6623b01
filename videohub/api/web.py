"""The browser UI: HTML pages and the static files under ``web/`` (``videohub/_web`` in a wheel).

Pages are public files (they hold no data); each page's script asks for a login and calls the API
with the tab's bearer token. Static files are served from ``/web/...`` with the path kept inside
the web directory.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from videohub.errors import NotFound
from videohub.resources import web_dir

router = APIRouter(include_in_schema=False)

# JavaScript modules must be served as text/javascript or the browser refuses to run them.
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")

_NO_CACHE = {"Cache-Control": "no-cache"}


def _page(name: str) -> FileResponse:
    path = web_dir() / name
    if not path.is_file():
        raise NotFound(f"page {name!r} is not installed")
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=_NO_CACHE)


def resolve_static(root: Path, relative: str) -> Path | None:
    """``relative`` inside ``root``, or None for anything that escapes it or is not a file."""
    base = root.resolve()
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


@router.get("/")
async def console_page() -> FileResponse:
    return _page("console.html")


@router.get("/login")
async def login_page() -> FileResponse:
    return _page("login.html")


@router.get("/display/{wall_id}")
async def display_page(wall_id: str) -> FileResponse:
    return _page("display.html")


@router.get("/registry")
async def registry_page() -> FileResponse:
    return _page("registry.html")


@router.get("/health")
async def health_page() -> FileResponse:
    return _page("health.html")


@router.get("/web/{path:path}")
async def static_file(path: str) -> FileResponse:
    found = resolve_static(web_dir(), path)
    if found is None:
        raise NotFound(f"no file {path!r}")
    media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    return FileResponse(found, media_type=media_type, headers=_NO_CACHE)
