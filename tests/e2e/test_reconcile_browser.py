"""Reconcile in headless Debian Chromium, against the simulator and a real PocketBase: someone
stopped a stack in Coolify's UI and wiped its PocketBase record, and left a stray record behind.
An operator opens Stacks > Reconcile, compares, and repairs each drift with one click; the
stray record is deleted only once "I am sure" is ticked."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.conf import Conf
from playwright.sync_api import Page, expect

from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation, Stack
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import PASSWORD, no_sleep

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REPORT_SHOT = "/tmp/cfadmin-reconcile-drift.png"


@pytest.fixture
def drifted(make_stack, remote, operator) -> Stack:
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        template_name="openclaw-agent",
        domains={"webui": "demo.customer123.com"},
        secrets={"ANTHROPIC_API_KEY": "sk-test-anthropic-0123456789abcdefghij"},
    )
    operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
    assert run_operation(operation.pk, remote=remote, sleep=no_sleep)
    assert Operation.objects.get(pk=operation.pk).status == OperationStatus.SUCCEEDED
    # Deployed a while ago (Coolify's status has caught up), stopped behind cfadmin's back.
    Stack.objects.filter(pk=stack.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    stack.refresh_from_db()
    remote.coolify.stop_service(stack.coolify_service_uuid)
    remote.pocketbase.delete_record(stack.pocketbase_id)
    remote.pocketbase.upsert_record(
        {"tenant": "old-customer", "stack_name": "old-customer-main", "status": "running"}
    )
    return stack


def test_operator_finds_and_repairs_drift(
    page: Page, live_server, drifted: Stack, remote, monkeypatch
):
    monkeypatch.setattr(Conf, "SYNC", True)  # the worker's tasks run inline
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.locator("#cf-ops-links").get_by_role("link", name="Reconcile").click()
    expect(page.locator("#cf-reconcile-summary")).to_have_text("No comparison has run yet.")
    page.get_by_role("button", name="Reconcile now").click()
    expect(page).to_have_url(re.compile(r"/admin/stacks/reconcilerun/latest/$"))
    expect(page.locator("#cf-reconcile-summary")).to_contain_text("3 drift found")
    status_row = page.locator("tr.cf-drift-service_status")
    expect(status_row).to_contain_text("cfadmin says running, Coolify says exited")
    expect(page.locator("tr.cf-drift-missing_record")).to_contain_text(
        "PocketBase has no agent_stacks record"
    )
    stray = page.locator("tr.cf-drift-orphan_record")
    expect(stray).to_contain_text("old-customer/old-customer-main")
    page.screenshot(path=REPORT_SHOT, full_page=True)

    page.locator("tr.cf-drift-missing_record").get_by_role(
        "button", name="Write cfadmin's record to PocketBase"
    ).click()
    expect(page.locator("#cf-reconcile-summary")).to_contain_text("2 drift found")
    expect(page.locator("#cf-reconcile-note")).to_contain_text("Wrote the PocketBase record")
    assert remote.pocketbase.find_record("customer-123", "customer-123-main") is not None

    page.locator("tr.cf-drift-service_status").get_by_role(
        "button", name="Take Coolify's status into cfadmin"
    ).click()
    expect(page.locator("#cf-reconcile-summary")).to_contain_text("1 drift found")
    assert Stack.objects.get(pk=drifted.pk).status == StackStatus.STOPPED

    # Deleting the stray record needs "I am sure".
    delete = page.locator("tr.cf-drift-orphan_record").get_by_role(
        "button", name="Delete the PocketBase record"
    )
    delete.click()
    expect(page.locator("ul.messagelist")).to_contain_text("tick “I am sure” first")
    assert remote.pocketbase.find_record("old-customer", "old-customer-main") is not None
    page.locator("tr.cf-drift-orphan_record").get_by_label("I am sure").check()
    delete.click()
    expect(page.locator("#cf-reconcile-summary")).to_contain_text("In sync")
    assert remote.pocketbase.find_record("old-customer", "old-customer-main") is None
    expect(page.locator("#cf-drift")).to_have_count(0)
