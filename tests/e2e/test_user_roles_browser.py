"""The admin role in headless Debian Chromium: Django Q's pages are the last section,
"Internals", of the home page; a viewer is made operator with one choice on their page, and the
user list's Roles column says so; a new user gets their role on the add page; the audit trail
links the change to the user."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.e2e.screens import shoot
from tests.e2e.test_security_browser import Watch

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_admin_sets_a_role_on_one_page(page: Page, live_server, admin_role, viewer):
    watch = Watch(page)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", admin_role.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/admin/")

    sections = page.locator("#content-main .app-list caption a.section, #content-main caption a")
    expect(sections.last).to_have_text("Internals")
    shoot(page, "home-internals", widths=(1400,))

    page.goto(f"{live_server.url}/admin/auth/user/")
    row = page.locator("#result_list tbody tr", has_text="viewer")
    expect(row.locator("td.field-roles_column")).to_have_text("viewer")
    row.get_by_role("link", name="viewer").click()

    page.select_option("select[name=role]", "operator")
    shoot(page, "user-role", widths=(1400,))
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    row = page.locator("#result_list tbody tr", has_text="viewer")
    expect(row.locator("td.field-roles_column")).to_have_text("operator")
    shoot(page, "users")

    # A new colleague: name, password and role on the one add page.
    page.goto(f"{live_server.url}/admin/auth/user/add/")
    page.fill("#id_username", "newcomer")
    page.fill("#id_password1", "a-long-enough-passphrase-42")
    page.fill("#id_password2", "a-long-enough-passphrase-42")
    page.select_option("select[name=role]", "support")
    shoot(page, "user-add", widths=(1400, 390))
    page.click("input[name=_save]")
    expect(page.locator("select[name=role]")).to_have_value("support")
    expect(page.locator("#id_is_staff")).to_be_checked()

    page.goto(f"{live_server.url}/admin/cfadmin/auditevent/?action__exact=update")
    target = page.locator("#result_list tbody td.field-target_column a").first
    expect(target).to_have_text("viewer")
    shoot(page, "audit-trail-links", widths=(1400,))
    target.click()
    expect(page).to_have_url(f"{live_server.url}/admin/auth/user/{viewer.pk}/change/")
    watch.assert_clean()
