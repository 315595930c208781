"""The operations dashboard's data (ops.dashboard): the same number of queries however much
there is to show (uptime from the daily and hourly rollups, history without details, the drift
of the last reconcile counted by the database), and the same figures as counting the results
one by one; the sparkline (ops.sparkline) and the badge classes on the choices classes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ops import incidents
from ops.checklists import start_run
from ops.dashboard import dashboard_data
from ops.health import CHECK_NAMES
from ops.models import (
    CheckStatus,
    HealthCheckResult,
    Incident,
    Outage,
    Procedure,
    ResponseState,
    Severity,
    rebuild_rollups,
)
from ops.procedures import DAILY_HEALTH_CHECK
from ops.sparkline import SPARKLINE_POINTS, sparkline
from stacks.models import ReconcileRun

# Results and last failures (one query, windowed), uptime (two: daily and hourly rollups in one
# UNION, and results of the part-hour each window starts in), outages with their incidents
# (one, joined), unresolved incidents, the last reconcile (its drift counted, not loaded), the
# PocketBase sync counts (one), contacts, procedures, open runs, operations in flight and just
# finished (one).
DASHBOARD_QUERIES = 11
# The page: the data, plus the session, the user and their permissions (two).
PAGE_QUERIES = DASHBOARD_QUERIES + 4
SIZES = [
    {"results_per_check": 1, "ended_outages": 1, "open_incidents": 1, "drift_rows": 1},
    {"results_per_check": 400, "ended_outages": 25, "open_incidents": 24, "drift_rows": 500},
]
STATUSES = [CheckStatus.OK, CheckStatus.OK, CheckStatus.WARNING, CheckStatus.DOWN]


def fill(
    actor, *, results_per_check: int, ended_outages: int, open_incidents: int, drift_rows: int = 0
) -> None:
    now = timezone.now()
    HealthCheckResult.objects.bulk_create(
        HealthCheckResult(
            check_name=name,
            status=STATUSES[(i + n) % len(STATUSES)],
            latency_ms=10 * i,
            message=f"{name} {i}",
            checked_at=now - timedelta(hours=7 * i + n),
        )
        for n, name in enumerate(CHECK_NAMES)
        for i in range(results_per_check)
    )
    rebuild_rollups()  # bulk_create bypasses ops.health.record, which counts as it stores
    ReconcileRun.objects.create(
        requested_by_repr="test",
        finished_at=now,
        drift=[{"kind": "status_mismatch", "target": f"stack:{i}"} for i in range(drift_rows)],
    )
    open_outages = [
        Outage.objects.create(check_name=name, started_at=now - timedelta(hours=1))
        for name in CHECK_NAMES[: max(1, open_incidents // 4)]
    ]
    ended = [
        Outage.objects.create(
            check_name=CHECK_NAMES[i % len(CHECK_NAMES)],
            started_at=now - timedelta(days=i + 2),
            ended_at=now - timedelta(days=i + 1),
        )
        for i in range(ended_outages)
    ]
    daily = Procedure.objects.get(slug=DAILY_HEALTH_CHECK, active=True)
    for i in range(open_incidents):
        incident = Incident(title=f"Incident {i}", severity=Severity.values[i % 4])
        incidents.prepare_new(incident, actor=actor)
        incident.save()
        incident.outages.add(open_outages[i % len(open_outages)], *ended[:2])
        start_run(daily, actor=actor, incident=incident)


@pytest.mark.django_db
@pytest.mark.parametrize("size", SIZES, ids=["small", "large"])
def test_the_dashboard_costs_the_same_queries_at_any_size(support, size, django_assert_num_queries):
    fill(support, **size)

    with django_assert_num_queries(DASHBOARD_QUERIES):
        data = dashboard_data()
        # What the template reads: nothing here may query.
        for row in data.rows:
            str(row.sparkline), row.latest, row.last_failure, row.uptime
        for outage in data.outages:
            [str(incident) for incident in outage.linked_incidents]
        for incident in data.open_incidents:
            str(incident), incident.escalation
        for run in data.open_runs:
            str(run)
        str(data.reconcile)

    assert data.reconcile.drift_total == size["drift_rows"]
    assert "drift" in data.reconcile.get_deferred_fields()  # counted, never loaded
    for row in data.rows:
        assert all("details" in result.get_deferred_fields() for result in row.history)
    assert len(data.open_incidents) == size["open_incidents"]
    assert len(data.outages) == max(1, size["open_incidents"] // 4) + min(10, size["ended_outages"])


def counted_uptime(name: str, since, now) -> float | None:
    """The truth: every result in the window, counted one by one."""
    results = HealthCheckResult.objects.filter(
        check_name=name, checked_at__gte=since, checked_at__lte=now
    )
    total = results.count()
    return results.filter(status=CheckStatus.OK).count() / total if total else None


@pytest.mark.django_db
@pytest.mark.parametrize("size", SIZES, ids=["small", "large"])
def test_the_dashboard_page_stays_within_fifteen_queries(
    support, client, size, django_assert_num_queries
):
    fill(support, **size)
    client.force_login(support)

    with django_assert_num_queries(PAGE_QUERIES):
        page = client.get(reverse("admin:ops_dashboard"))

    assert page.status_code == 200 and PAGE_QUERIES <= 15
    assert f"{size['drift_rows']} drift</strong>" in page.content.decode()


@pytest.mark.django_db
def test_each_row_agrees_with_counting_the_results(support):
    fill(support, results_per_check=330, ended_outages=0, open_incidents=0)
    now = timezone.now()

    rows = {row.check.name: row for row in dashboard_data().rows}

    assert list(rows) == CHECK_NAMES
    for name, row in rows.items():
        newest = HealthCheckResult.objects.filter(check_name=name).order_by("-checked_at")
        assert row.history == list(reversed(newest[:SPARKLINE_POINTS]))
        assert row.latest == newest.first()
        assert row.last_failure == newest.exclude(status=CheckStatus.OK).first()
        for label, days in (("24 h", 1), ("7 d", 7), ("30 d", 30), ("90 d", 90)):
            expected = counted_uptime(name, now - timedelta(days=days), now)
            assert row.uptime[label] == pytest.approx(expected), (name, label)


@pytest.mark.django_db
def test_a_check_never_run_has_an_empty_row():
    [row, *_] = dashboard_data().rows
    assert (row.history, row.latest, row.last_failure, row.sparkline) == ([], None, None, "")
    assert row.uptime == {"24 h": None, "7 d": None, "30 d": None, "90 d": None}


def test_badge_classes_come_from_the_choices():
    assert CheckStatus.DOWN.css_class == "cf-check cf-check-down"
    assert Severity.SEV1.css_class == "cf-severity cf-severity-sev1"
    assert Severity.SEV1.short_label == "SEV1"
    assert ResponseState.OVERDUE.css_class == "cf-response cf-response-overdue"
    assert {status.colour for status in CheckStatus} == {"#198754", "#fd7e14", "#dc3545"}


def test_the_sparkline_draws_a_bar_per_result_coloured_by_status():
    now = timezone.now()
    results = [
        HealthCheckResult(check_name="x", status=status, latency_ms=latency, checked_at=now)
        for status, latency in ((CheckStatus.OK, 50), (CheckStatus.DOWN, 100))
    ]
    svg = str(sparkline(results))
    assert svg.startswith("<svg") and "style" not in svg
    bars = re.findall(r'<rect [^>]*height="([\d.]+)" fill="([^"]+)"', svg)
    assert bars == [("12.0", CheckStatus.OK.colour), ("24.0", CheckStatus.DOWN.colour)]
    assert sparkline([]) == ""


@pytest.mark.django_db
def test_the_last_failure_is_found_behind_the_recent_results():
    now = timezone.now()
    name = CHECK_NAMES[0]
    HealthCheckResult.objects.create(
        check_name=name, status=CheckStatus.DOWN, message="old", checked_at=now - timedelta(days=3)
    )
    HealthCheckResult.objects.bulk_create(
        HealthCheckResult(
            check_name=name, status=CheckStatus.OK, checked_at=now - timedelta(minutes=5 * i)
        )
        for i in range(SPARKLINE_POINTS + 20)
    )

    row = dashboard_data().rows[0]

    assert len(row.history) == SPARKLINE_POINTS
    assert all(result.status == CheckStatus.OK for result in row.history)
    assert row.last_failure.message == "old"


def test_an_unknown_stored_status_is_escaped_in_the_sparkline():
    result = HealthCheckResult(
        check_name="x", status="<b>odd</b>", latency_ms=5, checked_at=timezone.now()
    )
    svg = str(sparkline([result]))
    assert "<b>" not in svg and "&lt;b&gt;odd&lt;/b&gt;" in svg


@pytest.mark.django_db
def test_the_dashboard_view_reuses_its_figures_for_a_few_seconds(
    support, client, settings, monkeypatch
):
    from ops import dashboard

    clock = [1000.0]
    monkeypatch.setattr(dashboard.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(dashboard, "_recent", None)
    settings.DASHBOARD_CACHE_SECONDS = 3
    client.force_login(support)
    url = reverse("admin:ops_dashboard")
    client.get(url)  # computes
    Incident.objects.create(title="Opened just now", severity=Severity.SEV1)

    clock[0] += 2  # within the reuse: no figures queried, the new incident not yet shown
    with CaptureQueriesContext(connection) as cached:
        assert "Opened just now" not in client.get(url).content.decode()
    clock[0] += 2  # past it: computed again
    with CaptureQueriesContext(connection) as computed:
        assert "Opened just now" in client.get(url).content.decode()
    assert len(cached) <= PAGE_QUERIES - DASHBOARD_QUERIES
    assert len(computed) >= DASHBOARD_QUERIES
