"""Wall layouts as a person sees them (tile sizes on screen), and the tour schedule every view shares."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.wallpage import open_console
from tests.fixtures.service import VideohubService

pytestmark = pytest.mark.e2e


def test_layouts_big_tile_and_grid(videohub_service: VideohubService, browser_page: Page) -> None:
    operator = f"op{uuid.uuid4().hex[:6]}"
    videohub_service.create_user(operator, "operator")
    page = browser_page
    open_console(page, videohub_service, operator, f"lay-{uuid.uuid4().hex[:6]}")
    for layout, count, big in (
        ("1", 1, 1.0),
        ("4", 4, 1 / 2),
        ("9", 9, 1 / 3),
        ("16", 16, 1 / 4),
        ("1+5", 6, 2 / 3),
        ("1+7", 8, 3 / 4),
    ):
        page.click(f"#layout-buttons button[data-layout='{layout}']")
        expect(page.locator("#wall")).to_have_attribute("data-layout", layout)
        tiles = page.locator("#wall .tile")
        expect(tiles).to_have_count(count)
        wall_box = page.locator("#wall").bounding_box()
        first = tiles.nth(0).bounding_box()
        last = tiles.nth(count - 1).bounding_box()
        assert wall_box and first and last
        # The first tile takes its share of the wall's width; the last is one grid cell.
        assert first["width"] / wall_box["width"] == pytest.approx(big, abs=0.02)
        if count > 1:
            cells = {4: 2, 9: 3, 16: 4, 6: 3, 8: 4}[count]
            assert last["width"] / wall_box["width"] == pytest.approx(1 / cells, abs=0.02)


def test_tour_schedule_is_shared(videohub_service: VideohubService, browser_page: Page) -> None:
    """effectiveTiles: the camera each tile shows at a given time, the same in every view."""
    page = browser_page
    page.goto(f"{videohub_service.base_url}/login")
    result = page.evaluate(
        """async () => {
      const { effectiveTiles } = await import('/web/wall.js');
      const wall = {layout: '4', tiles: [{camera_id: 'a', stream: 'sub'}],
                    tours: [{tile: 2, cameras: ['x', 'y', 'z'], dwell_seconds: 10, started_at: 1000}]};
      const wallTour = {layout: '4', tiles: [],
        tours: [{tile: 'wall', cameras: ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'], dwell_seconds: 5,
                 started_at: 0}]};
      const ids = (w, t) => effectiveTiles(w, t).map((tile) => tile.camera_id);
      return {t0: ids(wall, 1000), t1: ids(wall, 1015), t2: ids(wall, 1029), t3: ids(wall, 1030),
              w0: ids(wallTour, 1), w1: ids(wallTour, 6), w2: ids(wallTour, 11)};
    }"""
    )
    assert result["t0"] == ["a", None, "x", None]
    assert result["t1"][2] == "y" and result["t2"][2] == "z" and result["t3"][2] == "x"
    assert result["w0"] == ["c1", "c2", "c3", "c4"]
    assert result["w1"] == ["c5", "c6", "c1", "c2"]
    assert result["w2"] == ["c3", "c4", "c5", "c6"]
