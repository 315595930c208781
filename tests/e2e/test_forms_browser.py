"""Forms that keep everything, in headless Debian Chromium (issue 14): a failed deploy preview
shows every typed value again — the secrets kept server-side and marked "kept" — with the error
under its own field and no plan; the fixed form then deploys without retyping a secret. Stop asks
for confirmation first.

Screenshots (tests/e2e/screens.py): deploy-form-error-1400.png and -390.png.
"""

from __future__ import annotations

import re

import django_q.conf
import pytest
from playwright.sync_api import Page, expect

from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation, Stack
from tests.e2e.conftest import log_in
from tests.e2e.screens import overflows_horizontally, shoot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TENANT = "customer-123"
STACK = "customer-123-main"
DOMAIN = "demo.customer123.com"
ANTHROPIC_KEY = "sk-test-e2e-forms-" + "Rt5Yu6Io7Pa8" * 3 + "m2n3"
TELEGRAM_TOKEN = "123456789:test-e2e-forms-telegram-token-XYZ"
SECRETS = (ANTHROPIC_KEY, TELEGRAM_TOKEN)


@pytest.fixture
def sync_q(monkeypatch):
    """async_task runs inline: the operation runs when the request's transaction commits."""
    monkeypatch.setattr(django_q.conf.Conf, "SYNC", True)


@pytest.fixture
def console(page: Page) -> list[str]:
    """What the browser complained about: CSP refusals (select2 and the admin's autocomplete
    must run without inline code) and script errors."""
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text))
    page.on("pageerror", lambda error: seen.append(f"pageerror {error}"))
    return seen


def assert_no_complaint(console: list[str]) -> None:
    bad = [m for m in console if "Refused to" in m or "Content Security" in m or "pageerror" in m]
    assert bad == [], bad


def shows_no_secret(page: Page) -> None:
    content = page.content()
    for secret in SECRETS:
        assert secret not in content, f"a secret value is on {page.url}"


def pick_tenant(page: Page, search: str, slug: str) -> None:
    """The tenant autocomplete (select2 against the tenant admin): type, then pick."""
    page.locator("#cf-deploy-start .field-tenant .select2-selection").click()
    page.locator(".select2-search__field").fill(search)
    page.locator(".select2-results__option", has_text=slug).click()
    expect(page.locator("#cf-deploy-start .select2-selection__rendered")).to_contain_text(slug)


def below(page: Page, upper: str, lower: str) -> bool:
    top = page.locator(upper).bounding_box()
    bottom = page.locator(lower).bounding_box()
    assert top and bottom
    return bottom["y"] >= top["y"] + top["height"] - 1


def test_a_failed_preview_keeps_every_value_then_deploys_without_retyping(
    page: Page,
    live_server,
    operator,
    make_tenant,
    remote,
    sync_q,
    coolify_sim,
    pocketbase,
    console,
):
    make_tenant(TENANT, name="Acme Robotics")
    make_tenant("customer-456")
    log_in(page, live_server, operator.username)
    page.goto(f"{live_server.url}/admin/stacks/stack/deploy/")

    # Step 1: an unknown tenant cannot get past it; the real one is found by its name.
    page.select_option("#cf-deploy-start #id_template", "openclaw-agent")
    page.click("#cf-deploy-start input[type=submit]")
    expect(page.locator("#cf-deploy-start .field-tenant .errorlist")).to_contain_text(
        "Choose the tenant the stack is for."
    )
    expect(page.locator("#cf-deploy-form")).to_have_count(0)
    pick_tenant(page, "acme", TENANT)
    page.select_option("#cf-deploy-start #id_template", "openclaw-agent")
    page.click("#cf-deploy-start input[type=submit]")

    # Step 2, with a stack name that is not a DNS label.
    expect(page.locator("#cf-deploy-form")).to_be_visible()
    expect(page.locator(".field-tenant .select2-selection__rendered")).to_contain_text(TENANT)
    expect(page.locator("#id_project_name")).to_have_value("customer-123-project")
    page.fill("#id_stack_name", "Customer_123!")
    page.fill("#id_domain_webui", DOMAIN)
    page.fill("#id_env_ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    page.fill("#id_env_TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN)
    page.click("input[name=_preview]")

    # Everything typed is still there; the secrets are kept server-side, marked, not in the page.
    error = page.locator(".field-stack_name .errorlist")
    expect(error).to_be_visible()
    expect(page.locator(".errorlist")).to_have_count(1)
    expect(page.locator(".field-tenant .select2-selection__rendered")).to_contain_text(TENANT)
    expect(page.locator("#id_project_name")).to_have_value("customer-123-project")
    expect(page.locator("#id_stack_name")).to_have_value("Customer_123!")
    expect(page.locator("#id_domain_webui")).to_have_value(DOMAIN)
    for key, secret in (
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ("TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN),
    ):
        expect(page.locator(f"#id_env_{key}")).to_have_value("")
        kept = page.locator(f"#id_env_{key}_kept")
        expect(kept).to_be_visible()
        expect(kept).to_contain_text("kept")
        expect(kept).to_contain_text(secret[-4:])
    expect(page.locator("#cf-plan")).to_have_count(0)
    expect(page.locator("input[name=_deploy]")).to_have_count(0)
    assert "[]" not in page.locator("#content").inner_text()
    shows_no_secret(page)
    # The error sits under its own box and above the next field, at both widths.
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 1000})
        assert below(page, "#id_stack_name", ".field-stack_name .errorlist"), width
        assert below(page, ".field-stack_name .errorlist", ".field-domain_webui"), width
        assert not overflows_horizontally(page), width
    page.set_viewport_size({"width": 1400, "height": 1000})
    shoot(page, "deploy-form-error")
    assert_no_complaint(console)

    # Fix the name only: the preview uses the kept secrets, and Deploy deploys them.
    page.fill("#id_stack_name", STACK)
    page.click("input[name=_preview]")
    plan = page.locator("#cf-plan")
    expect(plan).to_contain_text("nothing has been deployed yet")
    expect(plan).to_contain_text(f"ANTHROPIC_API_KEY=sk-…{ANTHROPIC_KEY[-4:]}")
    expect(plan).to_contain_text(f"TELEGRAM_BOT_TOKEN=123…{TELEGRAM_TOKEN[-4:]}")
    shows_no_secret(page)
    page.click("input[name=_deploy]")

    stack = Stack.objects.get(tenant__slug=TENANT, stack_name=STACK)
    expect(page).to_have_url(re.compile(rf"/admin/stacks/stack/{stack.pk}/change/$"))
    expect(page.locator("ul.messagelist")).to_contain_text(f"Deploy of {TENANT}/{STACK} queued")
    shows_no_secret(page)
    operation = stack.operations.get()
    assert (operation.kind, operation.status) == (OperationKind.DEPLOY, OperationStatus.SUCCEEDED)
    [service] = coolify_sim.api.snapshot()["services"]
    assert service["envs"]["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert service["envs"]["TELEGRAM_BOT_TOKEN"] == TELEGRAM_TOKEN


def test_stop_asks_for_confirmation_first(page: Page, live_server, operator, make_stack):
    stack = make_stack(TENANT, STACK, status=StackStatus.RUNNING, domains={"webui": DOMAIN})
    log_in(page, live_server, operator.username)
    stack_url = f"{live_server.url}/admin/stacks/stack/{stack.pk}/change/"
    page.goto(stack_url)

    page.get_by_role("button", name="Stop…").click()

    expect(page.locator("h1")).to_have_text("Stop stacks?")
    confirm = page.locator("#cf-confirm-operation")
    expect(confirm).to_contain_text(f"{TENANT}/{STACK}")
    expect(confirm).to_contain_text(DOMAIN)
    expect(confirm).to_contain_text("domains stop answering")
    assert not Operation.objects.exists()
    page.set_viewport_size({"width": 390, "height": 1000})
    assert not overflows_horizontally(page)
    page.set_viewport_size({"width": 1400, "height": 1000})
    shoot(page, "confirm-stop")

    page.get_by_role("link", name="No, take me back").click()
    expect(page).to_have_url(stack_url)
    assert not Operation.objects.exists()

    page.get_by_role("button", name="Stop…").click()
    page.get_by_role("button", name="Yes, stop 1 stack").click()

    expect(page).to_have_url(stack_url)
    expect(page.locator("ul.messagelist")).to_contain_text("Queued 1 stop.")
    assert Operation.objects.get().kind == OperationKind.STOP
