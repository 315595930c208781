"""The global search in headless Debian Chromium (issue 14, point 4): a support person on any
admin page presses "/", types the domain a customer gave on the phone, presses Enter and opens
the stack; then finds the incident everyone talks about by its title."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from ops.models import Incident
from tests.e2e.screens import overflows_horizontally, shoot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BOX = "#cf-global-search-q"


@pytest.fixture
def world(make_stack) -> dict:
    for i in range(3):
        make_stack(f"customer-{i}00", domains={"webui": f"agent.customer{i}00.net"})
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        domains={"webui": "demo.customer123.com", "api": "api.customer123.com"},
    )
    incident = Incident.objects.create(title="Disk full on coolify-1")
    Incident.objects.create(title="Certificate expired for agent.customer100.net")
    return {"stack": stack, "incident": incident}


def _search_with_slash(page: Page, text: str) -> None:
    page.locator("body").click(position={"x": 5, "y": 400})  # nothing focused
    page.keyboard.press("/")
    expect(page.locator(BOX)).to_be_focused()
    expect(page.locator(BOX)).to_have_value("")  # the "/" focused the box, it was not typed
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_slash_then_a_domain_finds_the_stack(support_page: Page, live_server, world):
    page = support_page
    shoot(page, "global-search-header")
    _search_with_slash(page, "demo.customer12")

    expect(page).to_have_url(re.compile(r"/admin/search/\?q=demo\.customer12$"))
    expect(page.locator(BOX)).to_have_value("demo.customer12")  # the box keeps the search
    stacks = page.locator(".cf-search-group", has=page.get_by_role("heading", name="Stacks"))
    expect(stacks.get_by_role("link")).to_have_text(["customer-123-main"])
    expect(stacks).to_contain_text("demo.customer123.com")
    shoot(page, "global-search")
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert not overflows_horizontally(page), width
    page.set_viewport_size({"width": 1400, "height": 1000})

    stacks.get_by_role("link", name="customer-123-main").click()
    expect(page).to_have_url(re.compile(rf"/admin/stacks/stack/{world['stack'].pk}/change/$"))


def test_an_incident_by_its_title(support_page: Page, live_server, world):
    page = support_page
    page.goto(f"{live_server.url}/admin/stacks/stack/")
    _search_with_slash(page, "disk full")

    incidents = page.locator(".cf-search-group", has=page.get_by_role("heading", name="Incidents"))
    link = incidents.get_by_role("link", name=str(world["incident"]))
    expect(link).to_be_visible()
    link.click()
    expect(page).to_have_url(re.compile(rf"/admin/ops/incident/{world['incident'].pk}/change/$"))


def test_slash_typed_in_a_field_stays_in_the_field(support_page: Page, live_server, world):
    page = support_page
    page.goto(f"{live_server.url}/admin/stacks/stack/")
    page.locator("#searchbar").click()
    page.keyboard.type("a/b")
    expect(page.locator("#searchbar")).to_have_value("a/b")
    expect(page.locator(BOX)).not_to_be_focused()


def test_results_grouped_by_kind(support_page: Page, live_server, world):
    page = support_page
    _search_with_slash(page, "customer")
    headings = page.locator(".cf-search-group h2")
    expect(headings).to_have_count(2)
    expect(headings.nth(0)).to_contain_text("Tenants")
    expect(headings.nth(1)).to_contain_text("Stacks")
    shoot(page, "global-search-grouped")


def test_nothing_found_says_so(support_page: Page, live_server, world):
    page = support_page
    _search_with_slash(page, "no-such-customer")
    expect(page.locator("#cf-search-results")).to_contain_text(
        "Nothing found for “no-such-customer”."
    )
    shoot(page, "global-search-empty")
