"""What the browser tests share: logging in through the real login form."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD


def log_in(page: Page, live_server, username: str, *, then: str = "/admin/") -> Page:
    """Log `username` in through the login form (cookies of an earlier login cleared) at a
    1400 px wide window, and land on `then`."""
    page.context.clear_cookies()
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next={then}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}{then}")
    return page


@pytest.fixture
def support_page(page: Page, live_server, support) -> Page:
    """The browser, logged in as the support role, on the admin home."""
    return log_in(page, live_server, support.username)
