"""Helpers for the wall e2e tests: a logged-in console, tile playback checks in real Chromium."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page

from tests.fixtures.browser import login
from tests.fixtures.service import USER_PASSWORD, VideohubService

# framesDecoded of the tile's WHEP peer connection, the <video>'s size and the tile's state.
TILE_STATS = """async (el) => {
  const video = el.querySelector('video');
  const handle = video && video._whep;
  let frames = 0;
  if (handle && handle.pc) {
    const stats = await handle.pc.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
    });
  }
  return {width: video ? video.videoWidth : 0, frames, state: el.dataset.state, camera: el.dataset.camera,
          stream: el.dataset.stream, hidden: el.classList.contains('hidden')};
}"""


def tile(page: Page, index: int) -> Any:
    return page.locator(f"#wall .tile[data-index='{index}']")


def tile_stats(page: Page, index: int) -> dict[str, Any]:
    result: dict[str, Any] = tile(page, index).evaluate(TILE_STATS)
    return result


def wait_playing(page: Page, index: int, camera: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until tile ``index`` shows ``camera`` with a picture and frames still being decoded."""
    deadline = time.monotonic() + timeout
    first: dict[str, Any] | None = None
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = tile_stats(page, index)
        right_camera = camera is None or last["camera"] == camera
        if right_camera and last["width"] > 0 and last["frames"] > 0 and last["state"] == "live":
            if first is None or first["camera"] != last["camera"] or first["stream"] != last["stream"]:
                first = last
            elif last["frames"] > first["frames"]:
                return last
        else:
            first = None
        page.wait_for_timeout(300)
    raise AssertionError(f"tile {index} not playing {camera!r} within {timeout} s: {last}")


def wait_tile(page: Page, index: int, predicate: Any, what: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = tile_stats(page, index)
        if predicate(last):
            return last
        page.wait_for_timeout(250)
    raise AssertionError(f"tile {index}: {what} not seen within {timeout} s: {last}")


def open_console(page: Page, service: VideohubService, username: str, wall: str) -> None:
    login(page, service.base_url, username, USER_PASSWORD, next_path=f"/?wall={wall}")
    page.wait_for_selector("#wall .tile")
    page.wait_for_function("document.querySelector('#tree-summary').textContent !== ''")  # tree loaded
