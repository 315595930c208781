"""The operations dashboard's data (ops.dashboard): the same number of queries however much
there is to show, and the same figures as asking check by check; the sparkline (ops.sparkline)
and the badge classes on the choices classes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
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
    uptime,
)
from ops.procedures import DAILY_HEALTH_CHECK
from ops.sparkline import SPARKLINE_POINTS, sparkline

# Results (two queries, windowed), uptime (one), open and ended outages with their incidents
# (two each), unresolved incidents, the last reconcile, two PocketBase sync counts, contacts,
# procedures, open runs.
DASHBOARD_QUERIES = 14
STATUSES = [CheckStatus.OK, CheckStatus.OK, CheckStatus.WARNING, CheckStatus.DOWN]


def fill(actor, *, results_per_check: int, ended_outages: int, open_incidents: int) -> None:
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
@pytest.mark.parametrize(
    "size",
    [
        {"results_per_check": 1, "ended_outages": 1, "open_incidents": 1},
        {"results_per_check": 120, "ended_outages": 25, "open_incidents": 24},
    ],
    ids=["small", "large"],
)
def test_the_dashboard_costs_the_same_queries_at_any_size(support, size, django_assert_num_queries):
    fill(support, **size)

    with django_assert_num_queries(DASHBOARD_QUERIES):
        data = dashboard_data()
        # What the template reads: nothing here may query.
        for row in data.rows:
            str(row.sparkline), row.latest, row.last_failure, row.uptime
        for outage in data.outages:
            list(outage.incidents.all())
        for incident in data.open_incidents:
            str(incident), incident.escalation
        for run in data.open_runs:
            str(run)

    assert len(data.open_incidents) == size["open_incidents"]
    assert len(data.outages) == max(1, size["open_incidents"] // 4) + min(10, size["ended_outages"])


@pytest.mark.django_db
def test_each_row_agrees_with_asking_check_by_check(support):
    fill(support, results_per_check=130, ended_outages=0, open_incidents=0)
    now = timezone.now()

    rows = {row.check.name: row for row in dashboard_data().rows}

    assert list(rows) == CHECK_NAMES
    for name, row in rows.items():
        newest = HealthCheckResult.objects.filter(check_name=name).order_by("-checked_at")
        assert row.history == list(reversed(newest[:SPARKLINE_POINTS]))
        assert row.latest == newest.first()
        assert row.last_failure == newest.exclude(status=CheckStatus.OK).first()
        for label, days in (("24 h", 1), ("7 d", 7), ("30 d", 30)):
            assert row.uptime[label] == pytest.approx(uptime(name, now - timedelta(days=days)))


@pytest.mark.django_db
def test_a_check_never_run_has_an_empty_row():
    [row, *_] = dashboard_data().rows
    assert (row.history, row.latest, row.last_failure, row.sparkline) == ([], None, None, "")
    assert row.uptime == {"24 h": None, "7 d": None, "30 d": None}


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
