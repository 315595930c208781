"""Maintenance windows' automated checks (issue 17) against the Coolify simulator and a real
PocketBase: Coolify's version recorded before and after, a PocketBase backup taken and listed,
the stacks that were running and are not listed (linked on the window's page), the summary of
the day after (with a clock); the schedule runs each once; outages inside an announced window
are expected and their notifications say so; the monthly update's steps are verified."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ops import checklists
from ops.health import CheckOutcome, record
from ops.maintenance import checks, jobs
from ops.maintenance.summary import summarise
from ops.models import (
    CheckStatus,
    HealthCheckResult,
    MaintenanceWindow,
    NotifyEvent,
    Outage,
    Probe,
    Procedure,
)
from ops.probes import run_probe
from ops.procedures import MONTHLY_COOLIFY_UPDATES
from stacks.choices import OperationKind, OperationStatus
from stacks.clients.coolify_status import interpret
from stacks.coolify_simulator import api as simulator_api
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import brief_sleep
from tests.unit.notification_helpers import add_channel, contact, default_rules, notifications

pytestmark = pytest.mark.integration


def deploy(make_stack, remote, operator, count: int) -> list:
    stacks = []
    for i in range(count):
        stack = make_stack(
            f"customer-{i}",
            f"customer-{i}-main",
            template_name="telegram-bot",
            secrets={
                "TELEGRAM_BOT_TOKEN": f"12345:token-{i}-abcdefghij",
                "ANTHROPIC_API_KEY": "sk-test-anthropic-0123456789abcdefghij",
            },
        )
        operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
        assert run_operation(operation.pk, remote=remote, sleep=brief_sleep)
        operation.refresh_from_db()
        assert operation.status == OperationStatus.SUCCEEDED, operation.error
        stack.refresh_from_db()
        stacks.append(stack)
    return stacks


def wait_until_stopped(coolify, uuid: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not interpret(coolify.get_service(uuid).get("status")).running:
            return
        time.sleep(0.05)
    raise AssertionError(f"{uuid} still running")


def planned(run=None, **times) -> MaintenanceWindow:
    now = timezone.now()
    return MaintenanceWindow.objects.create(
        title="Coolify update",
        starts_at=times.get("starts_at", now - timedelta(minutes=5)),
        ends_at=times.get("ends_at", now + timedelta(hours=1)),
        announced_at=now - timedelta(days=3),
        checklist_run=run,
    )


@pytest.mark.django_db(transaction=True)
def test_before_and_after_record_versions_backup_and_the_stacks_that_stopped(
    make_stack, remote, operator, monkeypatch, client
):
    stacks = deploy(make_stack, remote, operator, 3)
    run = checklists.start_run(
        Procedure.objects.get(slug=MONTHLY_COOLIFY_UPDATES, active=True), actor=operator
    )
    window = planned(run)

    checks.run_before(window, operator, coolify=remote.coolify, pocketbase=remote.pocketbase)

    window.refresh_from_db()
    assert window.coolify_version_before == "4.3.11"
    assert window.backup_taken and window.backup_name.startswith(f"cfadmin_maintenance{window.pk}_")
    listed = {backup["key"]: backup for backup in remote.pocketbase.list_backups()}
    assert listed[window.backup_name]["size"] == window.backup_size > 0
    assert set(window.stacks_before) == {str(stack.pk) for stack in stacks}
    assert all(checks.counts_as_running(s) for s in window.stacks_before.values())
    assert window.check_errors["before"] == []
    assert run_probe(Probe.MAINTENANCE_BACKUP, run)[0] is True
    assert run_probe(Probe.MAINTENANCE_STACKS_RUNNING, run)[0] is False  # not compared yet

    # The update: a newer Coolify, and one stack did not come back.
    monkeypatch.setattr(simulator_api, "VERSION", "4.3.12")
    remote.coolify.stop_service(stacks[1].coolify_service_uuid)
    wait_until_stopped(remote.coolify, stacks[1].coolify_service_uuid)

    checks.run_after(window, operator, coolify=remote.coolify)

    window.refresh_from_db()
    assert (window.coolify_version_before, window.coolify_version_after) == ("4.3.11", "4.3.12")
    assert window.stopped_count == 1
    assert checks.stopped_ids(window) == [stacks[1].pk]
    assert window.stopped_stacks[0]["before"].startswith("running")
    passed, evidence = run_probe(Probe.MAINTENANCE_STACKS_RUNNING, run)
    assert passed is False and evidence["stopped"] == [stacks[1].pk]

    client.force_login(operator)
    page = client.get(reverse("admin:ops_maintenancewindow_change", args=[window.pk]))
    html = page.content.decode()
    assert "4.3.11</code> → <code>4.3.12" in html and window.backup_name in html
    assert reverse("admin:stacks_stack_change", args=[stacks[1].pk]) in html
    assert reverse("admin:stacks_stack_change", args=[stacks[0].pk]) not in html
    assert 'id="cf-run-before-checks"' in html and 'id="cf-run-after-checks"' in html

    # Started again, every stack is running: the step passes.
    remote.coolify.start_service(stacks[1].coolify_service_uuid)
    deadline = time.monotonic() + 10
    while not interpret(remote.coolify.get_service(stacks[1].coolify_service_uuid)["status"]).up:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    checks.run_after(window, operator, coolify=remote.coolify)
    assert run_probe(Probe.MAINTENANCE_STACKS_RUNNING, run)[0] is True


@pytest.mark.django_db(transaction=True)
def test_the_schedule_runs_each_check_once_at_its_time(make_stack, remote, operator):
    deploy(make_stack, remote, operator, 1)
    start = timezone.now() + timedelta(hours=1)
    window = planned(starts_at=start, ends_at=start + timedelta(hours=2))
    kwargs = {"coolify": remote.coolify, "pocketbase": remote.pocketbase}

    lead = jobs.before_lead()  # the backup and version are taken before the update begins
    assert jobs.run_due(start - lead - timedelta(minutes=1), **kwargs) == {
        "before": 0,
        "after": 0,
        "summary": 0,
    }
    assert jobs.run_due(start - lead + timedelta(minutes=1), **kwargs)["before"] == 1
    assert jobs.run_due(start + timedelta(minutes=2), **kwargs)["before"] == 0  # once
    window.refresh_from_db()
    assert window.coolify_version_before and window.backup_taken

    end = window.ends_at
    assert jobs.run_due(end + timedelta(minutes=1), **kwargs)["after"] == 1
    window.refresh_from_db()
    assert window.stopped_count == 0 and window.coolify_version_after == "4.3.11"

    assert jobs.run_due(end + timedelta(hours=23), **kwargs)["summary"] == 0
    assert jobs.run_due(end + timedelta(hours=24, minutes=1), **kwargs)["summary"] == 1
    window.refresh_from_db()
    assert window.summarised_at is not None and window.summary_outages == 0


@pytest.mark.django_db
def test_the_summary_counts_the_day_after_with_its_outages(operator):
    now = timezone.now()
    window = planned(starts_at=now - timedelta(hours=30), ends_at=now - timedelta(hours=26))
    end = window.ends_at
    for i in range(10):
        HealthCheckResult.objects.create(
            check_name="coolify_api",
            status=CheckStatus.DOWN if i == 3 else CheckStatus.OK,
            checked_at=end + timedelta(hours=i + 1),
        )
    HealthCheckResult.objects.create(
        check_name="coolify_api", status=CheckStatus.DOWN, checked_at=end - timedelta(hours=1)
    )  # inside the window: not the day after
    Outage.objects.create(
        check_name="coolify_api",
        started_at=end + timedelta(hours=4),
        ended_at=end + timedelta(hours=5),
    )
    Outage.objects.create(  # before the window ended, and over by then: not counted
        check_name="pocketbase",
        started_at=end - timedelta(hours=2),
        ended_at=end - timedelta(hours=1),
    )

    with pytest.raises(ValueError, match="24 hours after"):
        summarise(window, operator, now=end + timedelta(hours=23))
    summarise(window, operator, now=end + timedelta(hours=25))

    window.refresh_from_db()
    summary = window.health_summary
    assert summary["checks"]["coolify_api"] == {
        "results": 10,
        "ok": 9,
        "ok_share": 0.9,
        "outages": 1,
    }
    assert summary["outages"] == 1 and window.summary_outages == 1
    assert "pocketbase" not in summary["checks"]


@pytest.mark.django_db
def test_an_outage_inside_an_announced_window_is_expected_and_still_notified(client, support):
    default_rules()
    hook = add_channel(contact("Platform Down"), "json://127.0.0.1:9/platform")
    window = planned()

    record([CheckOutcome("coolify_api", CheckStatus.DOWN, "HTTP 502 from Coolify", True)])
    record([CheckOutcome("coolify_api", CheckStatus.OK, "ok", True)])

    outage = Outage.objects.get()
    assert outage.expected_maintenance_id == window.pk
    started, ended = notifications()  # still sent: not suppressed
    assert started.channel == hook and ended.channel == hook
    assert started.title == (
        "Outage started: coolify_api is down — expected (maintenance “Coolify update”)"
    )
    assert ended.title.endswith("— expected (maintenance “Coolify update”)")
    client.force_login(support)
    html = client.get(reverse("admin:ops_dashboard")).content.decode()
    assert "expected (maintenance “Coolify update”)" in html

    # After the window, or inside one not announced: not expected.
    MaintenanceWindow.objects.filter(pk=window.pk).update(announced_at=None)
    record([CheckOutcome("pocketbase", CheckStatus.DOWN, "down", True)])
    later = Outage.objects.get(check_name="pocketbase")
    assert later.expected_maintenance_id is None
    assert "expected" not in notifications(event=NotifyEvent.OUTAGE_STARTED)[-1].title
