"""The admin in headless Debian Chromium: a support person creates a tenant and deploys its first
stack (stacks are made by a deploy; there is no bare "Add stack")."""

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


def _assert_deployed_and_masked(page: Page) -> None:
    expect(page.locator("ul.messagelist")).to_contain_text("Deploy of customer-123/")
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
    # Made by a deploy: its names are read-only on its page (no inputs for them).
    for name in ("tenant", "stack_name", "project_name", "template_name"):
        expect(page.locator(f"#stack_form [name={name}]")).to_have_count(0)


def test_create_a_tenant_then_deploy_its_first_stack(logged_in: Page, live_server):
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

    # No bare "Add stack": the tenant's page deploys one (the deploy form knows the tenant).
    expect(page.get_by_text("Add stack for this tenant")).to_have_count(0)
    page.locator(".object-tools").get_by_role("link", name="Deploy a new stack").click()
    expect(page).to_have_url(re.compile(r"/admin/stacks/stack/deploy/\?tenant=customer-123$"))
    page.select_option("#cf-deploy-start #id_template", "openclaw-agent")
    page.click("#cf-deploy-start input[type=submit]")
    expect(page.locator("#id_project_name")).to_have_value("customer-123-project")
    page.fill("#id_stack_name", "customer-123-main")
    page.fill("#id_domain_webui", "demo.customer123.com")
    page.fill("#id_env_ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    page.fill("#id_env_TELEGRAM_BOT_TOKEN", "123456789:test-e2e-admin-telegram-token")
    page.click("input[name=_preview]")
    page.click("input[name=_deploy]")

    expect(page).to_have_url(re.compile(r"/admin/stacks/stack/\d+/change/$"))
    _assert_deployed_and_masked(page)
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_the_stack_list_offers_deploy_not_add(logged_in: Page, live_server):
    page = logged_in
    page.goto(f"{live_server.url}/admin/stacks/stack/")
    tools = page.locator(".object-tools")
    expect(tools.get_by_role("link", name="Deploy a new stack")).to_be_visible()
    expect(tools.get_by_text("Add stack")).to_have_count(0)
    assert page.goto(f"{live_server.url}/admin/stacks/stack/add/").status == 403
