"""Reconcile against the simulator and a real PocketBase: each kind of drift is found after
the remote side is changed behind cfadmin's back, and its repair brings all three together."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from cfadmin.models import AuditEvent
from stacks import reconcile
from stacks.choices import DriftKind, OperationKind, OperationStatus, Repair, StackStatus
from stacks.clients.coolify import CoolifyClient
from stacks.models import Operation, ReconcileRun, Stack
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import SIM_TOKEN, no_sleep

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ANTHROPIC_KEY = "sk-test-anthropic-0123456789abcdefghij"
TELEGRAM_TOKEN = "123456789:test-telegram-token-value"


@pytest.fixture
def deployed(make_stack, remote, operator) -> Stack:
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        template_name="openclaw-agent",
        domains={"webui": "demo.customer123.com"},
        secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN},
    )
    operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
    assert run_operation(operation.pk, remote=remote, sleep=no_sleep)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    age(stack)
    return stack


def age(stack: Stack) -> None:
    """As if the last change was a while ago: Coolify's status has caught up by then."""
    Stack.objects.filter(pk=stack.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    stack.refresh_from_db()


def wait_for_status(remote, uuid: str, wanted: str, timeout: float = 5.0) -> None:
    """Lifecycle calls only queue a job, and Coolify stores container statuses at its periodic
    checks: poll until it says `wanted`."""
    deadline = time.monotonic() + timeout
    while (status := remote.coolify.get_service(uuid)["status"]) != wanted:
        assert time.monotonic() < deadline, f"Coolify still says {status!r}, not {wanted!r}"
        time.sleep(0.01)


def compare(remote) -> ReconcileRun:
    return reconcile.run_reconcile(
        actor="test", coolify=remote.coolify, pocketbase=remote.pocketbase
    )


def fix(remote, drift: dict, kind: str | None = None) -> str:
    return reconcile.repair(
        kind or drift["repairs"][0],
        drift["target"],
        actor="test",
        coolify=remote.coolify,
        pocketbase=remote.pocketbase,
    )


def test_a_deployed_stack_is_in_sync(deployed, remote):
    run = compare(remote)
    assert (run.error, run.drift, run.stacks_checked) == ("", [], 1)


def test_a_missing_record_is_found_and_written_back(deployed, remote):
    remote.pocketbase.delete_record(deployed.pocketbase_id)

    [drift] = compare(remote).drift
    assert drift["kind"] == DriftKind.MISSING_RECORD
    assert drift["target"] == f"stack:{deployed.pk}" and drift["repairs"] == [Repair.PUSH_RECORD]

    fix(remote, drift)
    record = remote.pocketbase.find_record("customer-123", "customer-123-main")
    assert record["status"] == "running"
    assert record["service_uuid"] == deployed.coolify_service_uuid
    assert Stack.objects.get(pk=deployed.pk).pocketbase_id == record["id"]
    assert compare(remote).drift == []


def test_a_record_edited_elsewhere_is_reported_field_by_field(deployed, remote):
    remote.pocketbase.upsert_record(
        {"tenant": "customer-123", "stack_name": "customer-123-main", "status": "stopped"}
    )
    [drift] = compare(remote).drift
    assert drift["kind"] == DriftKind.RECORD_DIFFERS
    assert "status: 'stopped' ≠ 'running'" in drift["message"]
    fix(remote, drift)
    assert compare(remote).drift == []


def test_a_service_stopped_in_coolify_is_taken_into_cfadmin(deployed, remote):
    remote.coolify.stop_service(deployed.coolify_service_uuid)
    wait_for_status(remote, deployed.coolify_service_uuid, "exited")  # the stop job ran

    [drift] = compare(remote).drift
    assert drift["kind"] == DriftKind.SERVICE_STATUS
    assert "cfadmin says running, Coolify says exited" in drift["message"]

    done = fix(remote, drift)
    assert "running → stopped" in done
    deployed.refresh_from_db()
    assert deployed.status == StackStatus.STOPPED
    assert deployed.status_detail.startswith("Taken from Coolify by reconcile")
    assert remote.pocketbase.find_record("customer-123", "customer-123-main")["status"] == "stopped"
    assert compare(remote).drift == []
    assert AuditEvent.objects.filter(
        stack_name="customer-123-main", message__startswith="Reconcile: status running → stopped"
    ).exists()


def test_a_service_deleted_in_coolify_marks_the_stack_error(deployed, remote, coolify_sim):
    remote.coolify.delete_service(deployed.coolify_service_uuid)
    time.sleep(0.1)  # the simulator, like Coolify, lists a deleted service until it is gone

    drifts = compare(remote).drift
    [missing] = [d for d in drifts if d["kind"] == DriftKind.MISSING_SERVICE]
    assert "Redeploy to create it again, or delete the stack." in missing["message"]

    fix(remote, missing)
    deployed.refresh_from_db()
    assert deployed.status == StackStatus.ERROR
    record = remote.pocketbase.find_record("customer-123", "customer-123-main")
    assert record["status"] == "error"
    # Marked: nothing more to repair automatically; the drift stays visible until redeployed.
    [left] = compare(remote).drift
    assert left["kind"] == DriftKind.MISSING_SERVICE and left["repairs"] == []


def test_a_stack_cfadmin_lost_is_imported_with_domains_and_secrets(deployed, remote):
    service_uuid, record_id = deployed.coolify_service_uuid, deployed.pocketbase_id
    # As if cfadmin's database lost the stack (its operations first: they protect it).
    Operation.objects.filter(stack=deployed).delete()
    Stack.objects.filter(pk=deployed.pk).delete()

    [drift] = compare(remote).drift  # one row: the service (its record goes with it)
    assert drift["kind"] == DriftKind.ORPHAN_SERVICE
    assert (drift["tenant"], drift["stack_name"]) == ("customer-123", "customer-123-main")
    assert drift["target"] == f"service:{service_uuid}" and drift["repairs"] == [Repair.IMPORT]

    done = fix(remote, drift)
    assert done.startswith("Imported customer-123/customer-123-main")
    stack = Stack.objects.get(stack_name="customer-123-main", status=StackStatus.RUNNING)
    assert stack.template_name == "openclaw-agent"
    assert stack.coolify_service_uuid == service_uuid and stack.pocketbase_id == record_id
    assert stack.project_name == deployed.project_name
    assert list(stack.domains.values_list("service", "domain")) == [
        ("webui", "demo.customer123.com")
    ]
    secrets = {s.key: s.reveal() for s in stack.secrets.all()}
    assert secrets["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert compare(remote).drift == []
    event = AuditEvent.objects.get(message__startswith="Imported from Coolify service")
    assert ANTHROPIC_KEY not in json.dumps(event.changes)


def test_an_orphan_record_without_a_service_can_be_deleted(deployed, remote):
    remote.pocketbase.upsert_record(
        {"tenant": "gone", "stack_name": "gone-main", "template": "base-llm", "status": "running"}
    )
    [drift] = compare(remote).drift
    assert drift["kind"] == DriftKind.ORPHAN_RECORD
    assert drift["repairs"] == [Repair.DELETE_RECORD]

    fix(remote, drift)
    assert remote.pocketbase.find_record("gone", "gone-main") is None
    assert compare(remote).drift == []
    with pytest.raises(reconcile.RepairRefused, match="already gone"):
        fix(remote, drift)


def test_repairs_check_again_before_acting(deployed, remote):
    remote.coolify.stop_service(deployed.coolify_service_uuid)
    wait_for_status(remote, deployed.coolify_service_uuid, "exited")
    [drift] = compare(remote).drift
    remote.coolify.start_service(deployed.coolify_service_uuid)
    # Queued, started, then `exited` until the next container check stores running:healthy.
    wait_for_status(remote, deployed.coolify_service_uuid, "running:healthy")
    with pytest.raises(reconcile.RepairRefused, match="already agrees with Coolify"):
        fix(remote, drift)
    assert Stack.objects.get(pk=deployed.pk).status == StackStatus.RUNNING


def test_an_unreachable_coolify_is_reported_not_raised(deployed, remote):
    nowhere = CoolifyClient("http://127.0.0.1:9", SIM_TOKEN, timeout=1, sleep=no_sleep)
    run = reconcile.run_reconcile(actor="test", coolify=nowhere, pocketbase=remote.pocketbase)
    assert run.error.startswith("Coolify") and run.drift == [] and run.finished_at is not None


def test_a_starting_service_is_not_drift_yet(deployed, remote, coolify_sim):
    # A slow `docker compose up` (image pulls): the start job runs long enough to compare.
    coolify_sim.api.timings.start_seconds = 5.0
    uuid = deployed.coolify_service_uuid
    remote.coolify.restart_service(uuid)
    # The queued restart stops the service, then its compose run reads starting:unhealthy.
    wait_for_status(remote, uuid, "starting:unhealthy")

    assert compare(remote).drift == []
    assert remote.coolify.get_service(uuid)["status"] == "starting:unhealthy"  # still starting


def test_the_command_prints_drift_and_exits_by_what_it_found(deployed, remote):
    remote.pocketbase.delete_record(deployed.pocketbase_id)

    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("reconcile", "--json", stdout=out)
    assert exited.value.code == 1
    report = json.loads(out.getvalue())
    assert report["ok"] is False and report["stacks_checked"] == 1
    assert [d["kind"] for d in report["drift"]] == ["missing_record"]
    assert report["error"] == {"code": "drift", "message": "1 drift found (1 stack checked)."}

    out = io.StringIO()
    call_command("reconcile", "--repair", stdout=out)  # no SystemExit: in sync afterwards
    text = out.getvalue()
    assert "push_record stack:" in text and "Wrote the PocketBase record" in text
    assert "In sync: 1 stack checked, no drift." in text
    assert remote.pocketbase.find_record("customer-123", "customer-123-main") is not None
    runs = ReconcileRun.objects.filter(requested_by_repr__startswith="cli:")
    assert runs.count() == 3  # --json; --repair before and after repairing
    assert runs.first().note.startswith("push_record stack:")


def test_the_command_exits_2_when_it_cannot_compare(deployed, remote, settings):
    settings.COOLIFY_URL = "http://127.0.0.1:9"
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("reconcile", stderr=err)
    assert exited.value.code == 2
    assert err.getvalue().startswith("Cannot compare: Coolify")


def test_the_json_says_why_it_cannot_compare_once_on_stdout(deployed, remote, settings):
    settings.COOLIFY_URL = "http://127.0.0.1:9"
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("reconcile", "--json", stdout=out, stderr=err)
    assert exited.value.code == 2
    report = json.loads(out.getvalue())
    assert report["ok"] is False
    assert report["error"]["code"] == "cannot_compare"
    assert report["error"]["message"].startswith("Cannot compare: Coolify")
    assert err.getvalue() == ""  # the human line is for --verbose

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit):
        call_command("reconcile", "--json", "--verbose", stdout=out, stderr=err)
    assert json.loads(out.getvalue())["error"]["code"] == "cannot_compare"
    assert err.getvalue().startswith("error [cannot_compare]: Cannot compare: Coolify")
