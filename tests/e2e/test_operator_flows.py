"""The runbook's deploy and delete in headless Debian Chromium, one persona at a time.

The deploy runs for real during the request (django-q2 in sync mode) against the Coolify
simulator and a real PocketBase. Every page the browser shows is checked for the secret values.
Screenshots: /tmp/cfadmin-*.png.
"""

from __future__ import annotations

import re

import django_q.conf
import pytest
from django.contrib.auth.models import User
from django.db import transaction
from playwright.sync_api import Page, expect

from cfadmin.models import AuditEvent
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Stack
from stacks.plan import DeployRequest
from stacks.services import deploy_stack
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TENANT = "customer-123"
PROJECT = "customer-123-project"
STACK = "customer-123-main"
DOMAIN = "demo.customer123.com"
ANTHROPIC_KEY = "sk-test-e2e-ops-" + "Hj4Kl5Mn6Op7" * 3 + "w8e9"
TELEGRAM_TOKEN = "123456789:test-e2e-ops-telegram-token-ABC"
SECRETS = (ANTHROPIC_KEY, TELEGRAM_TOKEN)
DEPLOY_STEPS = [
    "render",
    "ensure_project",
    "create_service",
    "set_env",
    "start",
    "wait_healthy",
    "sync_pocketbase",
]


@pytest.fixture
def sync_q(monkeypatch):
    """async_task runs inline: the operation runs when the request's transaction commits."""
    monkeypatch.setattr(django_q.conf.Conf, "SYNC", True)


def shows_no_secret(page: Page) -> None:
    content = page.content()
    for secret in SECRETS:
        assert secret not in content, f"a secret value is on {page.url}"


def open_stacks(page: Page) -> None:
    """From the home page's operations links, or from any page's breadcrumbs."""
    links = page.locator("#cf-ops-links, .breadcrumbs").first
    links.get_by_role("link", name="Stacks", exact=True).last.click()
    expect(page).to_have_url(re.compile(r"/admin/stacks/stack/$"))


def pick_tenant(page: Page, slug: str) -> None:
    """Step 1's tenant autocomplete (select2 against the tenant admin): type, then pick."""
    page.locator("#cf-deploy-start .field-tenant .select2-selection").click()
    page.locator(".select2-search__field").fill(slug)
    page.locator(".select2-results__option", has_text=slug).click()


def fill_runbook_example(page: Page) -> None:
    """Step 1 (tenant + template), then the runbook's flags with fake secrets."""
    pick_tenant(page, TENANT)
    page.select_option("#cf-deploy-start #id_template", "openclaw-agent")
    page.click("#cf-deploy-start input[type=submit]")
    expect(page.locator("#cf-deploy-form")).to_be_visible()
    expect(page.locator(".field-tenant .select2-selection__rendered")).to_contain_text(TENANT)
    expect(page.locator("#id_project_name")).to_have_value(PROJECT)
    page.fill("#id_stack_name", STACK)
    page.fill("#id_domain_webui", DOMAIN)
    page.fill("#id_env_ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    page.fill("#id_env_TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN)


def status_of(page: Page):
    return page.locator(".field-status .readonly")


def deploy_for_real(actor: User) -> Stack:
    """The runbook's deploy as the operator would queue it; runs at commit (sync_q)."""
    request = DeployRequest(
        tenant=TENANT,
        project_name=PROJECT,
        template="openclaw-agent",
        stack_name=STACK,
        domains=[("webui", DOMAIN)],
        env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN},
    )
    with transaction.atomic():
        operation = deploy_stack(request, actor=actor)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    return Stack.objects.get(pk=operation.stack_id)


# --- operator: dry-run, then deploy --------------------------------------------------------------


def test_an_operator_previews_then_deploys_the_runbook_stack(
    page: Page, live_server, operator, make_tenant, remote, sync_q, coolify_sim, pocketbase
):
    make_tenant(TENANT)
    log_in(page, live_server, operator.username)
    open_stacks(page)
    page.get_by_role("link", name="Deploy a new stack").click()
    expect(page.locator("h1")).to_have_text("Deploy a new stack")

    fill_runbook_example(page)
    page.click("input[name=_preview]")

    plan = page.locator("#cf-plan")
    expect(plan).to_contain_text("nothing has been deployed yet")
    expect(plan).to_contain_text(f"{TENANT}/{STACK}")
    expect(plan).to_contain_text(DOMAIN)
    expect(plan).to_contain_text(f"ANTHROPIC_API_KEY=sk-…{ANTHROPIC_KEY[-4:]}")
    expect(plan).to_contain_text("TELEGRAM_BOT_TOKEN=123…-ABC")
    # The compose service key names the stack; Coolify names its container `<key>-<uuid>`,
    # so no container_name is written (Coolify would override it).
    expect(page.locator("#cf-plan-compose")).to_contain_text(f'"cf-agent-{TENANT}-{STACK}":')
    expect(page.locator("#cf-plan-compose")).not_to_contain_text("container_name")
    expect(page.locator("#cf-plan-compose")).to_contain_text("${ANTHROPIC_API_KEY}")
    # The password fields are not filled back in.
    expect(page.locator("#id_env_ANTHROPIC_API_KEY")).to_have_value("")
    shows_no_secret(page)
    assert not Stack.objects.exists()
    assert coolify_sim.api.snapshot()["services"] == []
    page.screenshot(path="/tmp/cfadmin-deploy-preview.png", full_page=True)

    page.click("input[name=_deploy]")

    stack = Stack.objects.get(tenant__slug=TENANT, stack_name=STACK)
    expect(page).to_have_url(re.compile(rf"/admin/stacks/stack/{stack.pk}/change/$"))
    expect(page.locator("ul.messagelist")).to_contain_text(f"Deploy of {TENANT}/{STACK} queued")
    if status_of(page).inner_text().strip() != "Running":
        page.reload()
    expect(status_of(page)).to_have_text("Running")
    progress = page.locator("#cf-operation-progress")
    expect(progress).to_contain_text("Deploy #")
    expect(progress).to_contain_text("Succeeded")
    expect(progress).to_contain_text("requested by operator")
    for step in DEPLOY_STEPS:
        expect(progress.locator("code", has_text=re.compile(rf"^{step}$"))).to_have_count(1)
    expect(page.locator(".field-current_value").first).to_contain_text(f"sk-…{ANTHROPIC_KEY[-4:]}")
    shows_no_secret(page)
    page.screenshot(path="/tmp/cfadmin-stack-running.png", full_page=True)

    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    [service] = coolify_sim.api.snapshot()["services"]
    assert service["uuid"] == stack.coolify_service_uuid
    assert service["envs"]["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    record = pocketbase.find_record(TENANT, STACK)
    assert record["status"] == "running" and record["id"] == stack.pocketbase_id
    operation = stack.operations.get()
    assert (operation.kind, operation.requested_by) == (OperationKind.DEPLOY, operator)


# --- support: only the dry-run ---------------------------------------------------------------


def test_a_support_user_sees_neither_deploy_nor_delete(
    page: Page, live_server, support, make_stack
):
    stack = make_stack(
        TENANT,
        STACK,
        status=StackStatus.RUNNING,
        domains={"webui": DOMAIN},
        secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY},
    )
    log_in(page, live_server, support.username)
    open_stacks(page)

    tools = page.locator(".object-tools")
    expect(tools.get_by_role("link", name="Preview a deploy (dry-run)")).to_be_visible()
    expect(page.get_by_text("Deploy a new stack")).to_have_count(0)
    expect(page.locator("select[name=action]")).to_have_count(0)
    shows_no_secret(page)

    page.get_by_role("link", name=STACK, exact=True).click()
    expect(status_of(page)).to_have_text("Running")
    expect(page.locator("#cf-stack-actions")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Delete"))).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("Delete"))).to_have_count(0)
    shows_no_secret(page)
    page.screenshot(path="/tmp/cfadmin-support-stack.png", full_page=True)

    open_stacks(page)
    page.get_by_role("link", name="Preview a deploy (dry-run)").click()
    expect(page.locator("h1")).to_have_text("Preview a deploy (dry-run)")
    pick_tenant(page, TENANT)
    page.select_option("#cf-deploy-start #id_template", "openclaw-agent")
    page.click("#cf-deploy-start input[type=submit]")
    page.fill("#id_stack_name", "customer-123-second")
    page.fill("#id_domain_webui", "second.customer123.com")
    page.fill("#id_env_ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    page.click("input[name=_preview]")

    expect(page.locator("#cf-plan")).to_contain_text("nothing has been deployed yet")
    expect(page.locator("#cf-plan")).to_contain_text("deploying needs the operator role")
    expect(page.locator("input[name=_deploy]")).to_have_count(0)
    shows_no_secret(page)
    page.screenshot(path="/tmp/cfadmin-support-preview.png", full_page=True)
    assert list(Stack.objects.values_list("pk", flat=True)) == [stack.pk]
    assert not stack.operations.exists()


# --- admin: delete with the typed confirmation -------------------------------------------------


def test_an_admin_deletes_the_stack_only_with_the_right_typed_name(
    page: Page,
    live_server,
    operator,
    admin_role,
    make_tenant,
    remote,
    sync_q,
    coolify_sim,
    pocketbase,
):
    make_tenant(TENANT)
    stack = deploy_for_real(operator)
    service_uuid = stack.coolify_service_uuid
    log_in(page, live_server, admin_role.username)
    open_stacks(page)
    page.get_by_role("link", name=STACK, exact=True).click()
    expect(status_of(page)).to_have_text("Running")

    page.get_by_role("button", name="Delete…").click()

    expect(page.locator("h1")).to_have_text("Delete stacks?")
    row = page.locator("#cf-confirm-delete tbody tr")
    expect(row).to_contain_text(TENANT)
    expect(row).to_contain_text(STACK)
    expect(row).to_contain_text(DOMAIN)
    # The server's names: volume `<uuid>_<Str::slug(name)>`, container `<key>-<uuid>`.
    expect(row).to_contain_text(f"{service_uuid}_cf-agent-{TENANT}-{STACK}-data")
    expect(row).to_contain_text(f"cf-agent-{TENANT}-{STACK}-{service_uuid}")
    expect(row).to_contain_text(stack.pocketbase_id)
    confirm = page.locator(f"input[name=confirm_{stack.pk}]")
    shows_no_secret(page)

    confirm.fill(STACK)  # the stack alone, not tenant/stack
    page.click("#cf-confirm-delete input[type=submit]")

    expect(page.locator(".errornote", has_text="Nothing was deleted")).to_be_visible()
    expect(page.locator(".errorlist")).to_contain_text(f"Type {TENANT}/{STACK} exactly.")
    page.screenshot(path="/tmp/cfadmin-delete-mismatch.png", full_page=True)
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    assert not stack.operations.filter(kind=OperationKind.DELETE).exists()
    assert [s["uuid"] for s in coolify_sim.api.snapshot()["services"]] == [service_uuid]

    page.locator(f"input[name=confirm_{stack.pk}]").fill(f"{TENANT}/{STACK}")
    page.click("#cf-confirm-delete input[type=submit]")

    expect(page.locator("ul.messagelist")).to_contain_text("Queued 1 delete.")
    page.goto(f"{live_server.url}/admin/stacks/stack/{stack.pk}/change/")
    expect(status_of(page)).to_have_text("Deleted")
    expect(page.locator("#cf-operation-progress")).to_contain_text("Succeeded")
    expect(page.locator("#cf-stack-actions")).to_have_count(0)
    shows_no_secret(page)
    page.screenshot(path="/tmp/cfadmin-stack-deleted.png", full_page=True)
    stack.refresh_from_db()
    assert stack.status == StackStatus.DELETED
    state = coolify_sim.api.snapshot()
    assert state["services"] == [] and state["volumes"] == []
    assert pocketbase.find_record(TENANT, STACK) is None

    # The audit view lists all of it, with the right actors.
    page.goto(f"{live_server.url}/admin/cfadmin/auditevent/?stack={STACK}")
    rows = page.locator("#result_list tbody tr")
    expect(rows.filter(has_text="Deploy requested").filter(has_text="operator")).to_have_count(1)
    expect(rows.filter(has_text="Delete requested").filter(has_text="admin")).to_have_count(1)
    expect(rows.filter(has_text="Deploy succeeded").filter(has_text="system")).to_have_count(1)
    expect(rows.filter(has_text="Delete succeeded").filter(has_text="system")).to_have_count(1)
    shows_no_secret(page)
    page.screenshot(path="/tmp/cfadmin-audit.png", full_page=True)
    assert set(AuditEvent.objects.values_list("actor_repr", flat=True)) == {
        "operator",
        "admin",
        "system",
    }
