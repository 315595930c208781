"""What the operations dashboard shows, gathered in a fixed number of queries however many
checks, results, outages, incidents or runs there are."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from ops.health import CHECK_NAMES, CHECKS, Check
from ops.models import (
    ChecklistRun,
    CheckStatus,
    EscalationContact,
    HealthCheckResult,
    Incident,
    Outage,
    Procedure,
    RunStatus,
)
from ops.sparkline import SPARKLINE_POINTS, sparkline
from stacks.choices import OutboxState
from stacks.models import ReconcileRun
from stacks.remote import outbox as pocketbase_outbox

UPTIME_WINDOWS = (
    ("24 h", timedelta(days=1)),
    ("7 d", timedelta(days=7)),
    ("30 d", timedelta(days=30)),
)
RECENT_ENDED_OUTAGES = 10
OPEN_RUNS_SHOWN = 20


@dataclass
class CheckRow:
    """One health check's line: its latest result, recent history, uptime, last failure."""

    check: Check
    enabled: bool
    history: list[HealthCheckResult] = field(default_factory=list)  # oldest first
    last_failure: HealthCheckResult | None = None
    uptime: dict[str, float | None] = field(default_factory=dict)  # None: no results

    @property
    def latest(self) -> HealthCheckResult | None:
        return self.history[-1] if self.history else None

    @property
    def sparkline(self) -> SafeString | str:
        return sparkline(self.history)


@dataclass
class DashboardData:
    rows: list[CheckRow]
    outages: list[Outage]
    open_incidents: list[Incident]
    reconcile: ReconcileRun | None
    pocketbase_sync: dict[str, Any]
    contacts: list[EscalationContact]
    procedures: list[Procedure]
    open_runs: list[ChecklistRun]

    def as_context(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _newest_per_check(results: Any, count: int) -> list[HealthCheckResult]:
    """The `count` newest of `results` for each check, in one query (a window function)."""
    return list(
        results.filter(check_name__in=CHECK_NAMES)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("check_name")],
                order_by=[F("checked_at").desc(), F("id").desc()],
            )
        )
        .filter(rank__lte=count)
        .order_by("check_name", "checked_at", "id")
    )


def _uptimes(now: datetime) -> dict[str, dict[str, float | None]]:
    """Share of OK results per check over each window, in one grouped query."""
    counts: dict[str, Any] = {}
    for i, (_, delta) in enumerate(UPTIME_WINDOWS):
        since = Q(checked_at__gte=now - delta)
        counts[f"total{i}"] = Count("pk", filter=since)
        counts[f"ok{i}"] = Count("pk", filter=since & Q(status=CheckStatus.OK))
    longest = max(delta for _, delta in UPTIME_WINDOWS)
    grouped = (
        HealthCheckResult.objects.filter(check_name__in=CHECK_NAMES, checked_at__gte=now - longest)
        .values("check_name")
        .annotate(**counts)
        .order_by()
    )
    return {
        row["check_name"]: {
            label: (row[f"ok{i}"] / row[f"total{i}"] if row[f"total{i}"] else None)
            for i, (label, _) in enumerate(UPTIME_WINDOWS)
        }
        for row in grouped
    }


def check_rows(now: datetime | None = None) -> list[CheckRow]:
    """Every check's row, in three queries."""
    now = now or timezone.now()
    rows = {check.name: CheckRow(check=check, enabled=check.enabled()) for check in CHECKS}
    for result in _newest_per_check(HealthCheckResult.objects.all(), SPARKLINE_POINTS):
        rows[result.check_name].history.append(result)
    failures = HealthCheckResult.objects.exclude(status=CheckStatus.OK)
    for result in _newest_per_check(failures, 1):
        rows[result.check_name].last_failure = result
    uptimes = _uptimes(now)
    for name, row in rows.items():
        row.uptime = uptimes.get(name) or {label: None for label, _ in UPTIME_WINDOWS}
    return list(rows.values())


def dashboard_data() -> DashboardData:
    """Everything the dashboard shows, evaluated (so the template adds no queries)."""
    return DashboardData(
        rows=check_rows(),
        outages=[
            *Outage.objects.open().prefetch_related("incidents"),
            *Outage.objects.filter(ended_at__isnull=False).prefetch_related("incidents")[
                :RECENT_ENDED_OUTAGES
            ],
        ],
        open_incidents=list(
            Incident.objects.unresolved()
            .select_related("escalation")
            .order_by("severity", "opened_at")
        ),
        reconcile=ReconcileRun.latest_finished(),
        pocketbase_sync={
            "pending": pocketbase_outbox.stack_count(OutboxState.PENDING),
            "refused": pocketbase_outbox.stack_count(OutboxState.REJECTED),
            "url": reverse("admin:stacks_stack_changelist") + "?pocketbase_sync=",
        },
        contacts=list(EscalationContact.objects.all()),
        procedures=list(Procedure.objects.filter(active=True)),
        open_runs=list(
            ChecklistRun.objects.filter(status=RunStatus.OPEN).select_related(
                "procedure", "stack__tenant", "tenant"
            )[:OPEN_RUNS_SHOWN]
        ),
    )
