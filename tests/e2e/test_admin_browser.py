"""The admin in headless Debian Chromium: a support person creates a tenant and its first stack."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from stacks.models import Stack, StackSecret
from tenants.models import Tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

USERNAME = "root"
PASSWORD = "e2e-" + "correct-horse-battery-staple"
ANTHROPIC_KEY = "sk-test-e2e-" + "Qw3rTy7uIo9pAs1dFg5h" * 3 + "k9Zx"
SCREENSHOT = "/tmp/cfadmin-stack.png"


@pytest.fixture
def logged_in(page: Page, live_server, django_user_model) -> Page:
    django_user_model.objects.create_superuser(username=USERNAME, password=PASSWORD, email="")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/admin/")
    return page


def _fill_stack(page: Page) -> None:
    page.select_option("#id_template_name", "openclaw-agent")
    page.fill("#id_stack_name", "customer-123-main")
    page.fill("#id_domains-0-service", "webui")
    page.fill("#id_domains-0-domain", "demo.customer123.com")
    page.fill("#id_secrets-0-key", "ANTHROPIC_API_KEY")
    page.fill("#id_secrets-0-value", ANTHROPIC_KEY)


def _assert_saved_and_masked(page: Page) -> None:
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    mask = f"sk-…{ANTHROPIC_KEY[-4:]}"
    expect(page.locator(".field-current_value").first).to_contain_text(mask)
    assert ANTHROPIC_KEY not in page.content()
    assert page.input_value("#id_secrets-0-value") == ""

    stack = Stack.objects.get(tenant__slug="customer-123", stack_name="customer-123-main")
    assert stack.template_name == "openclaw-agent"
    assert [(d.service, d.domain) for d in stack.domains.all()] == [
        ("webui", "demo.customer123.com")
    ]
    assert StackSecret.objects.get(stack=stack, key="ANTHROPIC_API_KEY").reveal() == ANTHROPIC_KEY


def test_create_a_tenant_then_its_first_stack(logged_in: Page, live_server):
    page = logged_in
    page.locator("#content-main").get_by_role("link", name="Tenants", exact=True).last.click()
    expect(page).to_have_url(re.compile(r"/admin/tenants/tenant/$"))
    page.click(".object-tools a.addlink")

    # A slug that is not a DNS label is refused next to the field.
    page.fill("#id_slug", "Customer_123")
    page.fill("#id_name", "Customer 123 GmbH")
    page.fill("#id_contact_email", "ops@customer123.com")
    page.click("input[name=_continue]")
    expect(page.locator(".field-slug .errorlist")).to_contain_text("lowercase letters")
    assert not Tenant.objects.exists()

    page.fill("#id_slug", "customer-123")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    tenant = Tenant.objects.get(slug="customer-123")

    page.click("text=Add stack for this tenant")
    expect(page).to_have_url(re.compile(r"/admin/stacks/stack/add/\?tenant="))
    # The tenant is preselected in the autocomplete widget, the project name prefilled.
    expect(page.locator("#id_tenant")).to_have_value(str(tenant.pk))
    expect(page.locator(".field-tenant .select2-selection__rendered")).to_contain_text(
        "customer-123"
    )
    expect(page.locator("#id_project_name")).to_have_value("customer-123-project")
    _fill_stack(page)
    page.click("input[name=_continue]")

    _assert_saved_and_masked(page)
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_pick_the_tenant_in_the_autocomplete_widget(logged_in: Page, live_server):
    Tenant.objects.create(slug="customer-100", name="Someone else")
    Tenant.objects.create(slug="customer-123", name="Customer 123 GmbH")
    page = logged_in
    page.goto(f"{live_server.url}/admin/stacks/stack/add/")

    page.click(".field-tenant .select2-selection")
    page.fill(".select2-container--open .select2-search__field", "customer-12")
    option = page.locator(".select2-results__option", has_text="customer-123")
    expect(option).to_have_count(1)
    option.click()
    page.fill("#id_project_name", "customer-123-project")
    _fill_stack(page)
    page.click("input[name=_continue]")

    _assert_saved_and_masked(page)
