"""A viewer opens the deploy page in headless Debian Chromium and gets the styled 403 page
(cfadmin.permission_denied): the console's header and look, the role it needs, their roles, a
way back to where they came from; no Content-Security-Policy violation."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.e2e.screens import overflows_horizontally, shoot
from tests.e2e.test_security_browser import Watch

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_viewer_opening_the_deploy_url_sees_the_styled_403(page: Page, live_server, viewer):
    watch = Watch(page)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/stacks/stack/")
    page.fill("#id_username", viewer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/admin/stacks/stack/")

    # As a link to it from the stack list would (a viewer is offered none).
    response = page.goto(
        live_server.url + reverse("admin:stacks_stack_deploy"),
        referer=f"{live_server.url}/admin/stacks/stack/",
    )
    page.wait_for_load_state("networkidle")

    assert response is not None and response.status == 403
    expect(page).to_have_title("Access denied | cfadmin")
    expect(page.locator("#header")).to_be_visible()  # the console's header and user links
    expect(page.locator("h1")).to_have_text("You do not have access to this page")
    expect(page.locator("#cf-needed-role")).to_contain_text("This needs the support role")
    expect(page.locator("#cf-current-roles")).to_contain_text("viewer")
    # Styled: the admin's stylesheet and the page's own rules apply (no raw browser page).
    chip = page.locator(".cf-role-chip").first
    assert chip.evaluate("e => getComputedStyle(e).borderRadius") != "0px"
    assert page.locator("body").evaluate("e => getComputedStyle(e).fontFamily") != "Times"
    shoot(page, "forbidden")
    assert not overflows_horizontally(page)

    page.set_viewport_size({"width": 390, "height": 900})
    assert not overflows_horizontally(page)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.locator("#cf-back-link").click()
    expect(page).to_have_url(f"{live_server.url}/admin/stacks/stack/")
    watch.assert_clean()
