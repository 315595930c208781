"""The dashboard's Coolify budget and maintenance windows with their checks (issue 17), in the
same queries as before; the window page's check buttons and the monthly update run's "Plan
maintenance window"; the monitoring step's probe."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cfadmin.models import AuditEvent
from ops import checklists
from ops.dashboard import dashboard_data
from ops.models import MaintenanceWindow, Probe, Procedure
from ops.probes import run_probe
from ops.procedures import MONTHLY_COOLIFY_UPDATES
from stacks.choices import OperationKind, OperationStatus
from stacks.models import Operation, RemoteSnapshot
from stacks.remote import budget
from tests.unit.test_ops_dashboard import DASHBOARD_QUERIES


@pytest.fixture(autouse=True)
def _no_budget_figure(request):
    """No figure from before: a check thread of an earlier test (one that hung, on purpose)
    may have written one after that test ended."""
    if request.node.get_closest_marker("django_db"):
        RemoteSnapshot.objects.filter(name=budget.SNAPSHOT).delete()


def window(**fields) -> MaintenanceWindow:
    now = timezone.now()
    fields.setdefault("starts_at", now - timedelta(minutes=10))
    fields.setdefault("ends_at", now + timedelta(hours=1))
    return MaintenanceWindow.objects.create(
        title=fields.pop("title", "Coolify update"), announced_at=now - timedelta(days=3), **fields
    )


@pytest.mark.django_db
def test_the_dashboard_shows_the_budget_and_the_windows_checks_in_the_same_queries(
    client, support, make_stack
):
    now = timezone.now()
    RemoteSnapshot.objects.create(
        name=budget.SNAPSHOT,
        fetched_at=now,
        data={
            "limit": 200,
            "remaining": 140,
            "resets_at": (now + timedelta(seconds=40)).isoformat(),
        },
    )
    for i in range(3):
        stack = make_stack(f"customer-{i}")
        Operation.objects.create(
            stack=stack, kind=OperationKind.RESTART, status=OperationStatus.QUEUED, background=True
        )
    on = window(
        before_checked_at=now,
        coolify_version_before="4.3.11",
        backup_name="cfadmin_maintenance1_x.zip",
        backup_size=10,
    )
    ended = window(
        title="Last night",
        starts_at=now - timedelta(hours=5),
        ends_at=now - timedelta(hours=3),
        after_checked_at=now - timedelta(hours=3),
        coolify_version_after="4.3.12",
        stopped_count=2,
    )
    window(title="Long ago", starts_at=now - timedelta(days=3), ends_at=now - timedelta(days=2))

    with CaptureQueriesContext(connection) as captured:
        data = dashboard_data()

    assert len(captured) == DASHBOARD_QUERIES
    shown = data.coolify_budget
    assert (shown["limit"], shown["remaining"]) == (200, 140)
    assert 30 <= shown["resets_in"] <= 40
    assert (shown["background_waiting"], shown["background_in_flight"]) == (3, 0)
    assert [w.pk for w in data.maintenance] == [on.pk, ended.pk]  # not one over for a day
    assert data.maintenance[0].backup_name and data.maintenance[1].stopped_count == 2

    client.force_login(support)
    html = client.get(reverse("admin:ops_dashboard")).content.decode()
    assert "140 of 200 calls left this minute" in html
    assert "3 waiting, 0 of" in html
    assert "backup cfadmin_maintenance1_x.zip" in html and "2 stacks stopped" in html


@pytest.mark.django_db
def test_a_budget_never_seen_says_so():
    shown = dashboard_data().coolify_budget
    assert shown["limit"] is None and shown["background_waiting"] == 0


@pytest.mark.django_db
def test_the_window_page_queues_the_checks_and_the_run_plans_a_window(
    client, operator, viewer, monkeypatch
):
    queued = []
    monkeypatch.setattr(
        "ops.maintenance.jobs.enqueue", lambda func, *args, **kw: queued.append((func, args))
    )
    run = checklists.start_run(
        Procedure.objects.get(slug=MONTHLY_COOLIFY_UPDATES, active=True), actor=operator
    )
    client.force_login(operator)
    run_page = client.get(reverse("admin:ops_checklistrun_change", args=[run.pk])).content.decode()
    plan_url = reverse("admin:ops_maintenancewindow_add") + f"?checklist_run={run.pk}"
    assert plan_url in run_page.replace("&amp;", "&")
    form = client.get(plan_url).content.decode()
    assert f'name="checklist_run" value="{run.pk}"' in form

    planned = window(checklist_run=run)
    url = reverse("admin:ops_maintenancewindow_run_checks", args=[planned.pk, "after"])
    client.post(url)
    assert queued == [("ops.maintenance.jobs.run_checks_task", (planned.pk, "after", operator.pk))]
    assert AuditEvent.objects.filter(message="Maintenance after-checks requested").exists()

    client.force_login(viewer)
    assert client.post(url).status_code == 403
    assert len(queued) == 1


@pytest.mark.django_db
def test_monitoring_passes_only_with_a_summary_without_outage(operator):
    run = checklists.start_run(
        Procedure.objects.get(slug=MONTHLY_COOLIFY_UPDATES, active=True), actor=operator
    )
    assert run_probe(Probe.MAINTENANCE_MONITORED, run)[0] is None  # no window: a person looks
    planned = window(checklist_run=run)
    assert run_probe(Probe.MAINTENANCE_MONITORED, run)[0] is False
    MaintenanceWindow.objects.filter(pk=planned.pk).update(
        summarised_at=timezone.now(), health_summary={"outages": 1, "checks": {}}
    )
    assert run_probe(Probe.MAINTENANCE_MONITORED, run)[0] is False
    MaintenanceWindow.objects.filter(pk=planned.pk).update(health_summary={"outages": 0})
    assert run_probe(Probe.MAINTENANCE_MONITORED, run)[0] is True
    steps = dict(run.procedure.steps.values_list("text", "probe"))
    assert steps["Backup critical data: PocketBase + key volumes"] == Probe.MAINTENANCE_BACKUP
    assert steps["Monitor: 24h post-update monitoring"] == Probe.MAINTENANCE_MONITORED
