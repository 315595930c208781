"""Maintenance windows (ops.admin.maintenance, ops.status_page.maintenance): announced on the
status page when created (unless unticked), shown on the operations dashboard, cancelled off
both; the checklist probes the status page answers (maintenance announced 48h ahead, a public
status update posted); migration 0021 gives the two runbook steps those probes; and the
dashboard's warning about failing notification channels."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cfadmin.models import AuditEvent
from ops import checklists, incidents
from ops.dashboard import dashboard_data
from ops.models import (
    ChannelKind,
    EscalationContact,
    Incident,
    MaintenanceWindow,
    NotificationChannel,
    Probe,
    Procedure,
    PublicStatus,
    Severity,
)
from ops.probes import run_probe
from ops.status_page import maintenance
from ops.status_page.updates import post_update
from tests.unit.test_ops_dashboard import DASHBOARD_QUERIES

MIGRATION = importlib.import_module("ops.migrations.0021_status_page_probes")
MONTHLY = "monthly-coolify-updates"
OUTAGE = "complete-service-outage"
ANNOUNCE_STEP = "Announce maintenance: 48h advance notice"
STATUS_STEP = "Immediate: post a status update on the status page"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def split(moment) -> dict[str, str]:
    moment = timezone.localtime(moment)
    return {"0": moment.strftime("%Y-%m-%d"), "1": moment.strftime("%H:%M:%S")}


def add_form(*, starts_in: timedelta, lasts: timedelta = timedelta(hours=2), announce=True):
    now = timezone.now().replace(microsecond=0)
    starts, ends = split(now + starts_in), split(now + starts_in + lasts)
    form = {
        "title": "Coolify update",
        "public_message": "Deploys pause for up to two hours.",
        "starts_at_0": starts["0"],
        "starts_at_1": starts["1"],
        "ends_at_0": ends["0"],
        "ends_at_1": ends["1"],
        "owner": "",
        "checklist_run": "",
    }
    if announce:
        form["announce"] = "on"
    return form


def window(*, starts_in: timedelta, announced_ahead: timedelta | None = None, **fields):
    now = timezone.now()
    starts = now + starts_in
    if announced_ahead is not None:
        fields["announced_at"] = starts - announced_ahead
    fields.setdefault("title", "Coolify update")
    return MaintenanceWindow.objects.create(
        starts_at=starts, ends_at=starts + timedelta(hours=2), **fields
    )


def status_page(client) -> str:
    cache.clear()
    return client.get(reverse("status_page")).content.decode()


def dashboard(client) -> str:
    return client.get(reverse("admin:ops_dashboard")).content.decode()


# --- the admin ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_window_is_announced_at_once_and_shown_on_the_status_page_and_dashboard(
    client, support
):
    client.force_login(support)

    response = client.post(
        reverse("admin:ops_maintenancewindow_add"), add_form(starts_in=timedelta(days=3))
    )

    assert response.status_code == 302
    [created] = MaintenanceWindow.objects.all()
    assert created.announced_at is not None and created.cancelled_at is None
    assert created.owner == support
    assert AuditEvent.objects.filter(
        target_id=str(created.pk), message__startswith="Maintenance announced"
    ).exists()
    assert "Deploys pause for up to two hours." in status_page(client)
    assert "Scheduled maintenance" in status_page(client)
    shown = dashboard(client)
    assert f'data-window="{created.pk}"' in shown and "announced on the status page" in shown
    assert 'href="/status/"' in shown  # the link to the public page


@pytest.mark.django_db
def test_unticked_it_is_planned_quietly_and_announced_later_by_the_action(client, support):
    client.force_login(support)
    client.post(
        reverse("admin:ops_maintenancewindow_add"),
        add_form(starts_in=timedelta(days=3), announce=False),
    )
    [quiet] = MaintenanceWindow.objects.all()
    assert quiet.announced_at is None
    assert "Coolify update" not in status_page(client)
    assert f'data-window="{quiet.pk}"' not in dashboard(client)

    client.post(
        reverse("admin:ops_maintenancewindow_changelist"),
        {"action": "announce_selected", "_selected_action": [quiet.pk]},
    )

    quiet.refresh_from_db()
    assert quiet.announced_at is not None
    assert "Coolify update" in status_page(client)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("starts_in", "lasts", "error"),
    [
        (timedelta(days=1), timedelta(hours=-1), "Ends: must be after the start."),
        (
            timedelta(days=-2),
            timedelta(hours=1),
            "Ends: a window announced on the status page must not be over already.",
        ),
    ],
)
def test_bad_times_are_refused_naming_the_field(client, support, starts_in, lasts, error):
    client.force_login(support)

    response = client.post(
        reverse("admin:ops_maintenancewindow_add"), add_form(starts_in=starts_in, lasts=lasts)
    )

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


@pytest.mark.django_db
def test_cancelling_takes_it_off_the_status_page_and_the_dashboard(client, support):
    client.force_login(support)
    planned = window(starts_in=timedelta(days=3), announced_ahead=timedelta(days=4))
    assert "Coolify update" in status_page(client)

    client.post(
        reverse("admin:ops_maintenancewindow_changelist"),
        {"action": "cancel_selected", "_selected_action": [planned.pk]},
    )

    planned.refresh_from_db()
    assert planned.cancelled_at is not None
    assert "Coolify update" not in status_page(client)
    assert f'data-window="{planned.pk}"' not in dashboard(client)
    assert (
        "Maintenance cancelled: Coolify update"
        in client.get(reverse("status_page_rss")).content.decode()
    )
    assert maintenance.cancel(planned, actor=support) is False  # once


@pytest.mark.django_db
def test_the_list_shows_upcoming_windows_first_soonest_first(client, support):
    past = window(starts_in=-timedelta(days=5), title="Past one")
    later = window(starts_in=timedelta(days=9), title="Later one")
    soon = window(starts_in=timedelta(days=1), title="Soon one")
    client.force_login(support)

    html = client.get(reverse("admin:ops_maintenancewindow_changelist")).content.decode()

    positions = [html.index(w.title) for w in (soon, later, past)]
    assert positions == sorted(positions)


@pytest.mark.django_db
def test_a_viewer_cannot_plan_maintenance(client, viewer):
    client.force_login(viewer)
    response = client.post(
        reverse("admin:ops_maintenancewindow_add"), add_form(starts_in=timedelta(days=3))
    )
    assert response.status_code == 403
    assert not MaintenanceWindow.objects.exists()


# --- the probes ----------------------------------------------------------------------------------


def monthly_run(actor):
    return checklists.start_run(Procedure.objects.get(slug=MONTHLY, active=True), actor=actor)


@pytest.mark.django_db
def test_maintenance_announced_needs_a_window_announced_48h_ahead(support):
    run = monthly_run(support)
    assert run_probe(Probe.MAINTENANCE_ANNOUNCED, run)[0] is False  # nothing announced

    late = window(starts_in=timedelta(hours=30), announced_ahead=timedelta(hours=30))
    passed, evidence = run_probe(Probe.MAINTENANCE_ANNOUNCED, run)
    assert passed is False and evidence["error"] == "announced 30h ahead: too late"

    good = window(starts_in=timedelta(days=3), announced_ahead=timedelta(hours=50))
    passed, evidence = run_probe(Probe.MAINTENANCE_ANNOUNCED, run)
    assert passed is True and evidence["window_id"] == good.pk

    # Quiet, cancelled or past windows do not count.
    MaintenanceWindow.objects.filter(pk=good.pk).update(cancelled_at=timezone.now())
    window(starts_in=timedelta(days=3))  # not announced
    window(starts_in=-timedelta(days=3), announced_ahead=timedelta(days=5))  # over
    assert run_probe(Probe.MAINTENANCE_ANNOUNCED, run)[0] is False
    assert late.pk


@pytest.mark.django_db
def test_a_window_linked_to_the_run_is_the_one_judged(support):
    run = monthly_run(support)
    window(starts_in=timedelta(days=5), announced_ahead=timedelta(days=4))  # unrelated, fine
    assert run_probe(Probe.MAINTENANCE_ANNOUNCED, run)[0] is True

    linked = window(
        starts_in=timedelta(hours=10), announced_ahead=timedelta(hours=10), checklist_run=run
    )
    passed, evidence = run_probe(Probe.MAINTENANCE_ANNOUNCED, run)
    assert passed is False and evidence["window_id"] == linked.pk

    MaintenanceWindow.objects.filter(pk=linked.pk).update(
        announced_at=linked.starts_at - timedelta(hours=48)
    )
    passed, evidence = run_probe(Probe.MAINTENANCE_ANNOUNCED, run)
    assert passed is True and evidence["linked_to_this_run"] is True


@pytest.mark.django_db
def test_status_update_posted_needs_a_public_update_on_the_runs_incident(support):
    procedure = Procedure.objects.get(slug=OUTAGE, active=True)
    outside = checklists.start_run(procedure, actor=support)
    passed, evidence = run_probe(Probe.STATUS_UPDATE_POSTED, outside)
    assert passed is None and "not inside an incident" in evidence["note"]

    incident = Incident(title="Coolify down", severity=Severity.SEV1)
    incidents.prepare_new(incident, actor=support)
    incident.save()
    run = checklists.start_run(procedure, actor=support, incident=incident)
    passed, evidence = run_probe(Probe.STATUS_UPDATE_POSTED, run)
    assert passed is False and "not on the status page" in evidence["error"]

    post_update(incident, PublicStatus.INVESTIGATING, "We know.", "Platform down", actor=support)
    run.refresh_from_db()
    passed, evidence = run_probe(Probe.STATUS_UPDATE_POSTED, run)
    assert passed is True and evidence["public_title"] == "Platform down"


# --- migration 0021 ------------------------------------------------------------------------------


def probe_of(slug: str, text: str) -> str:
    return Procedure.objects.get(slug=slug, active=True).steps.get(text=text).probe


@pytest.mark.django_db
def test_a_fresh_database_has_the_probes_and_the_migration_changes_nothing():
    assert probe_of(MONTHLY, ANNOUNCE_STEP) == Probe.MAINTENANCE_ANNOUNCED
    assert probe_of(OUTAGE, STATUS_STEP) == Probe.STATUS_UPDATE_POSTED
    count = Procedure.objects.count()
    MIGRATION.new_versions(django_apps, None)
    assert Procedure.objects.count() == count


@pytest.mark.django_db
def test_the_migration_gives_an_older_database_a_new_version_once(support):
    old = {slug: Procedure.objects.get(slug=slug, active=True) for slug in (MONTHLY, OUTAGE)}
    for procedure in old.values():
        procedure.steps.filter(
            probe__in=[Probe.MAINTENANCE_ANNOUNCED, Probe.STATUS_UPDATE_POSTED]
        ).update(probe="")
    old[OUTAGE].steps.create(position=99, text="Tell the customers", command="", probe="")
    old_run = checklists.start_run(old[MONTHLY], actor=support)

    MIGRATION.new_versions(django_apps, None)

    for slug, procedure in old.items():
        new = Procedure.objects.get(slug=slug, active=True)
        assert new.version == procedure.version + 1 and new.title == procedure.title
        assert [s.text for s in new.steps.order_by("position")] == [
            s.text for s in procedure.steps.order_by("position")
        ]
    assert probe_of(MONTHLY, ANNOUNCE_STEP) == Probe.MAINTENANCE_ANNOUNCED
    assert probe_of(OUTAGE, STATUS_STEP) == Probe.STATUS_UPDATE_POSTED
    assert probe_of(OUTAGE, "Check system status") == Probe.COOLIFY_API  # kept
    assert probe_of(OUTAGE, "Tell the customers") == ""  # an admin's step kept
    old_run.refresh_from_db()
    assert old_run.procedure_id == old[MONTHLY].pk  # old runs keep their version

    count = Procedure.objects.count()
    MIGRATION.new_versions(django_apps, None)
    assert Procedure.objects.count() == count


# --- the dashboard -------------------------------------------------------------------------------


def channel(*, failures: int, enabled: bool = True, **owner) -> NotificationChannel:
    owner = owner or {"contact": EscalationContact.objects.get(team="Platform Team")}
    return NotificationChannel.objects.create(
        kind=ChannelKind.WEBHOOK,
        url_encrypted="not-a-real-token",
        url_hint="json://127.0.0.1/••••",
        consecutive_failures=failures,
        last_failure_at=timezone.now() - timedelta(minutes=3),
        enabled=enabled,
        label="on-call hook",
        **owner,
    )


@pytest.mark.django_db
def test_the_dashboard_warns_of_failing_channels_only(client, support, settings):
    settings.NOTIFY_CHANNEL_FAILURES_WARNING = 3
    failing = channel(failures=4)
    personal = channel(failures=3, user=support)
    fine = channel(failures=2)
    off = channel(failures=9, enabled=False)
    client.force_login(support)

    html = dashboard(client)

    assert 'id="cf-failing-channels"' in html
    for shown in (failing, personal):
        assert reverse("admin:ops_notificationchannel_change", args=[shown.pk]) in html
    for hidden in (fine, off):
        assert reverse("admin:ops_notificationchannel_change", args=[hidden.pk]) not in html
    assert "Platform Team, on-call hook): 4 failures in a row" in html
    assert f"({support.username}, on-call hook): 3 failures in a row" in html

    NotificationChannel.objects.update(consecutive_failures=0)
    assert 'id="cf-failing-channels"' not in dashboard(client)


@pytest.mark.django_db
def test_maintenance_and_channels_cost_the_dashboard_no_extra_query(support):
    for i in range(8):
        window(starts_in=timedelta(days=i + 1), announced_ahead=timedelta(days=i + 3))
        channel(failures=5 + i)
    window(starts_in=-timedelta(minutes=10), announced_ahead=timedelta(days=3), title="On now")

    with CaptureQueriesContext(connection) as captured:
        data = dashboard_data()

    assert len(captured) == DASHBOARD_QUERIES
    assert [w.title for w in data.maintenance][:1] == ["On now"] and data.maintenance[0].on_now
    assert len(data.maintenance) == 5 and len(data.failing_channels) == 8
    assert [c.consecutive_failures for c in data.failing_channels] == list(range(12, 4, -1))
    assert {p.slug for p in data.procedures} == set(
        Procedure.objects.filter(active=True).values_list("slug", flat=True)
    )
    assert all(isinstance(p.version, int) for p in data.procedures)
