"""Login page in real Chromium: Chinese first, English switch that sticks, errors, token for the tab."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.browser import screenshot
from tests.fixtures.service import ADMIN_PASSWORD, VideohubService

pytestmark = pytest.mark.e2e


def test_login_in_chinese_then_english(videohub_service: VideohubService, browser_page: Page) -> None:
    page = browser_page
    page.goto(f"{videohub_service.base_url}/login")
    expect(page.locator("#login-submit")).to_have_text("登录")
    page.fill("#username", "admin")
    page.fill("#password", "wrong-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("用户名或密码错误")

    page.click("[data-testid=lang-switch]")
    expect(page.locator("#login-submit")).to_have_text("Log in")
    page.reload()
    expect(page.locator("#login-submit")).to_have_text("Log in")
    screenshot(page, "login_en")

    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{videohub_service.base_url}/")
    token = page.evaluate("sessionStorage.getItem('videohub.token')")
    assert isinstance(token, str) and token
    # The language choice is shared by the pages; the token is not in localStorage (tab only).
    assert page.evaluate("localStorage.getItem('videohub.token')") is None
