"""A stack's page in headless Debian Chromium follows a deploy without a reload: the page is
opened while the deploy is queued, the deploy then runs (a worker's thread, against the Coolify
simulator and a real PocketBase), and the page's live region shows it succeed, the validation
run it opened, and that run completing its automatic items. Screenshots at 1400 and 390 px
(tests/e2e/screens.py)."""

from __future__ import annotations

import importlib
import re
import threading

import pytest
from django.apps import apps as django_apps
from django.db import connection, transaction
from playwright.sync_api import Page, expect

from ops.models import ChecklistRun, Procedure, RunStatus
from ops.procedures import POST_DEPLOY
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Stack
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import PASSWORD, no_sleep
from tests.e2e.screens import overflows_horizontally, shoot
from tests.integration.test_health_checks import TLSServer, make_pki

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TENANT = "customer-123"
STACK = "customer-123-main"
DOMAIN = "demo.customer123.com"
ANTHROPIC_KEY = "sk-test-e2e-stack-page-" + "Zx8Cv7Bn6M" * 3


@pytest.fixture
def runbook():
    if not Procedure.objects.filter(slug=POST_DEPLOY, active=True).exists():
        importlib.import_module("ops.migrations.0003_seed_runbook").seed(django_apps, None)


@pytest.fixture
def served_domain(tmp_path, settings):
    """The stack's domain served over HTTPS on loopback, with a CA cfadmin trusts: the
    validation run's DNS and HTTPS items pass by themselves."""
    pki = make_pki(tmp_path / "pki", DOMAIN)
    server = TLSServer(pki["cert"], pki["key"]).start()
    settings.PROBE_RESOLVE = {DOMAIN: server.address}
    settings.PROBE_CA_FILE = pki["ca"]
    settings.PROBE_EXTERNAL = False
    settings.HEALTHCHECK_TIMEOUT = 3.0
    yield server
    server.stop()


def log_in(page: Page, live_server, username: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/admin/")


def run_in_worker(operation_id: int, remote) -> threading.Thread:
    """What a qcluster worker does with the queued task, in a thread of this process."""

    def work() -> None:
        try:
            run_operation(operation_id, remote=remote, sleep=no_sleep)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_the_stack_page_follows_a_deploy_and_its_validation_run_without_a_reload(
    page: Page, live_server, operator, make_stack, runbook, remote, served_domain
):
    stack = make_stack(
        TENANT, STACK, domains={"webui": DOMAIN}, secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    )
    with transaction.atomic():
        operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
    log_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/admin/stacks/stack/{stack.pk}/change/")

    live = page.locator("#cf-stack-live")
    expect(live.locator("#cf-stack-status")).to_have_text("Pending")
    expect(live.locator(".cf-op-status")).to_have_text("Queued")
    expect(live.locator("#cf-stack-checklists")).to_have_text("none open")
    expect(live.locator("#cf-stack-domains a")).to_have_attribute("href", f"https://{DOMAIN}/")
    page.evaluate("window.cfMarker = 1")  # gone if the page reloads

    worker = run_in_worker(operation.pk, remote)

    # The operation finishes and the stack runs, without a reload.
    expect(live.locator(".cf-op-status")).to_have_text("Succeeded", timeout=15000)
    expect(live.locator("#cf-stack-status")).to_have_text("Running", timeout=15000)
    worker.join(timeout=30)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error

    # The validation run it opened is linked from the top, and completes its automatic items.
    run = ChecklistRun.objects.get(stack=stack, procedure__slug=POST_DEPLOY)
    assert run.status == RunStatus.COMPLETED  # the hook ran its probes before the worker ended
    notice = live.locator("#cf-stack-checklists-notice")
    expect(notice).to_contain_text(f"Deploy succeeded — validation run #{run.pk}", timeout=15000)
    expect(notice).to_contain_text("(completed)")
    expect(live.locator("#cf-stack-checklists")).to_have_text("none open")
    expect(live.locator("#cf-stack-checklists-panel")).to_contain_text(
        f"Post-deploy validation #{run.pk} completed"
    )
    assert page.evaluate("window.cfMarker") == 1, "the page reloaded"
    expect(live.locator(".cf-live-age")).to_be_visible()
    expect(page.locator("#cf-stack-actions button", has_text="Stop")).to_be_visible()

    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    assert ANTHROPIC_KEY not in page.content()

    # Technical ids come last: after the domains, secrets and operations.
    order = page.evaluate(
        """() => ["#cf-stack-live", "#domains-group", "#secrets-group", "#operations-group",
                  ".field-coolify_service_uuid"].map(
            (s) => document.querySelector(s).getBoundingClientRect().top + window.scrollY)"""
    )
    assert order == sorted(order), order

    # The operations listed further down follow too.
    expect(page.locator("#cf-stack-operations-list")).to_contain_text("Succeeded", timeout=15000)
    assert page.evaluate("window.cfMarker") == 1, "the page reloaded"

    shoot(page, "stack-page")
    page.set_viewport_size({"width": 390, "height": 1000})
    page.wait_for_timeout(100)
    assert not overflows_horizontally(page), "the stack page is wider than a 390 px phone"
    page.set_viewport_size({"width": 1400, "height": 1000})

    notice.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/admin/ops/checklistrun/{run.pk}/change/$"))


def test_the_stack_list_updates_itself_and_its_actions_still_work(
    page: Page, live_server, operator, make_stack
):
    stack = make_stack(TENANT, STACK, status=StackStatus.RUNNING, domains={"webui": DOMAIN})
    make_stack(TENANT, "customer-123-old", status=StackStatus.DELETED)
    log_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/admin/stacks/stack/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)  # the deleted stack is hidden
    expect(page.locator(".object-tools")).not_to_contain_text("Add stack")
    page.evaluate("window.cfMarker = 1")

    Stack.objects.filter(pk=stack.pk).update(status=StackStatus.ERROR)
    expect(rows.first.locator(".field-status_display")).to_have_text("Error", timeout=15000)
    assert page.evaluate("window.cfMarker") == 1, "the page reloaded"

    # Django's actions work on the new rows: ticking one counts it.
    rows.first.locator("input.action-select").check()
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
