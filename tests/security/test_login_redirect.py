"""The login page's ``next=`` in real Chromium: only same-origin paths, never another site.

Browsers read ``\\`` as ``/`` and drop tabs and newlines in URLs, so ``/\\evil.example/`` and
``/<tab>/evil.example`` are ``//evil.example``: another host. Requests to evil.example are answered
by the test (page.route), so a redirect that leaves the site is seen, not a DNS error.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Route

from tests.fixtures.service import ADMIN_PASSWORD, VideohubService

pytestmark = pytest.mark.e2e

HOSTILE = [
    "/%5Cevil.example/",
    "/%09/evil.example",
    "//evil.example",
    "/%5C/evil.example",
    "%2F%2Fevil.example",
    "/%2F%5Cevil.example",
    "/%255Cevil.example",
    "https://evil.example/",
    "/%0A/evil.example",
]


def _log_in(page: Page, base_url: str, query: str) -> str:
    page.context.route(re.compile(r"^https?://evil\.example"), _evil)
    page.goto(f"{base_url}/login?{query}")
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(lambda url: "/login" not in url, timeout=15_000)
    page.wait_for_load_state()
    return page.url


def _evil(route: Route) -> None:
    route.fulfill(status=200, content_type="text/html", body="<h1 id=evil>evil</h1>")


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_next_goes_to_the_home_page(
    videohub_service: VideohubService, browser_page: Page, payload: str
) -> None:
    landed = _log_in(browser_page, videohub_service.base_url, f"next={payload}")
    assert landed == f"{videohub_service.base_url}/", f"next={payload} led to {landed}"


def test_a_same_origin_next_is_followed(videohub_service: VideohubService, browser_page: Page) -> None:
    landed = _log_in(browser_page, videohub_service.base_url, "next=%2Fhealth%3Fline%3Dsafety")
    assert landed == f"{videohub_service.base_url}/health?line=safety"
