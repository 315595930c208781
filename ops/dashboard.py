"""What the operations dashboard shows, gathered in a fixed number of queries however many
checks, results, outages, incidents, runs or drift rows there are: uptime from the daily
rollups, history rows without their details, counts counted by the database; the small lists
(procedures, announced maintenance, failing notification channels) in one query."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import DateTimeField, F, IntegerField, Q, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.safestring import SafeString

from ops import dashboard_budget
from ops.health import CHECK_NAMES, CHECKS, Check
from ops.maintenance.summary import MONITORED
from ops.models import (
    ChecklistRun,
    CheckStatus,
    EscalationContact,
    HealthCheckResult,
    Incident,
    MaintenanceWindow,
    NotificationChannel,
    Outage,
    Procedure,
    RunStatus,
    uptimes,
)
from ops.notifications.delivery import failing_channels
from ops.sparkline import SPARKLINE_POINTS, sparkline
from stacks.choices import IN_FLIGHT_OPERATION_STATUSES
from stacks.models import Operation, ReconcileRun
from stacks.remote import outbox as pocketbase_outbox

UPTIME_WINDOWS = {
    "24 h": timedelta(days=1),
    "7 d": timedelta(days=7),
    "30 d": timedelta(days=30),
    "90 d": timedelta(days=90),
}
# What the history and last-failure cells read: never a result's details JSON.
RESULT_FIELDS = ("id", "check_name", "status", "critical", "message", "latency_ms", "checked_at")
FAILED_STATUSES = [status for status in CheckStatus if status != CheckStatus.OK]
RECENT_ENDED_OUTAGES = 10
OPEN_RUNS_SHOWN = 20
# Queued and running operations (at most one per stack), and the latest finished ones: what a
# deploy looks like from the dashboard while it runs and just after.
IN_FLIGHT_OPERATIONS_SHOWN = 20
FINISHED_OPERATIONS_SHOWN = 5
MAINTENANCE_SHOWN = 5
FAILING_CHANNELS_SHOWN = 10


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

    @cached_property
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
    operations: list[Operation] = field(default_factory=list)  # in flight first
    # Announced, not cancelled, not over: soonest first (each with `on_now`).
    maintenance: list[MaintenanceWindow] = field(default_factory=list)
    # Enabled channels failing NOTIFY_CHANNEL_FAILURES_WARNING times in a row (`owner_name`).
    failing_channels: list[NotificationChannel] = field(default_factory=list)
    # The shared Coolify call budget and the background operations (budget_shown).
    coolify_budget: dict[str, Any] = field(default_factory=dict)
    status_page_url: str = ""

    @property
    def operations_in_flight(self) -> list[Operation]:
        return [operation for operation in self.operations if operation.is_in_flight]

    @property
    def operations_finished(self) -> list[Operation]:
        return [operation for operation in self.operations if not operation.is_in_flight]

    def as_context(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _history_and_last_failures(count: int) -> list[HealthCheckResult]:
    """Per check, the `count` newest results and its newest warning and newest down result
    (which may be older), in one query whatever the table's size. Each part is an index seek
    with a LIMIT on (check_name, -checked_at); the parts are joined with UNION ALL, each
    wrapped in its own SELECT (SQLite allows no LIMIT in a compound's parts), so the result
    rows are then read by primary key: never a scan, or a window, over every result.
    Each row comes with `failed` (not OK)."""
    newest = HealthCheckResult.objects.order_by("-checked_at", "-id").values("pk")
    parts = []
    for name in CHECK_NAMES:
        parts.append(newest.filter(check_name=name)[:count])
        parts += [newest.filter(check_name=name, status=status)[:1] for status in FAILED_STATUSES]
    compiled = [part.query.sql_with_params() for part in parts]
    union = " UNION ALL ".join(
        f"SELECT * FROM ({sql}) AS part{i}" for i, (sql, _) in enumerate(compiled)
    )
    params = tuple(param for _, part_params in compiled for param in part_params)
    return list(
        HealthCheckResult.objects.filter(pk__in=RawSQL(union, params))
        .only(*RESULT_FIELDS)
        .annotate(failed=~Q(status=CheckStatus.OK))
        .order_by("check_name", "checked_at", "id")
    )


def check_rows(now: datetime | None = None) -> list[CheckRow]:
    """Every check's row, in three queries."""
    now = now or timezone.now()
    rows = {check.name: CheckRow(check=check, enabled=check.enabled()) for check in CHECKS}
    for result in _history_and_last_failures(SPARKLINE_POINTS):  # oldest first
        row = rows[result.check_name]
        row.history.append(result)
        if result.failed:
            row.last_failure = result  # the newest failure wins
    for row in rows.values():
        del row.history[:-SPARKLINE_POINTS]  # an older failure is not part of the history
    by_check = uptimes(CHECK_NAMES, UPTIME_WINDOWS, now)
    for name, row in rows.items():
        row.uptime = by_check[name]
    return list(rows.values())


def latest_reconcile() -> ReconcileRun | None:
    """The latest finished comparison with its drift counted (`drift_total`), not loaded."""
    return ReconcileRun.with_drift_total(
        ReconcileRun.objects.filter(finished_at__isnull=False)
    ).first()


def outages_shown() -> list[Outage]:
    """Open outages and the latest ended ones, each with `linked_incidents` (number and title
    only), in one query: a row per outage and linked incident (a LEFT JOIN), folded here."""
    latest_ended = Outage.objects.filter(ended_at__isnull=False).order_by("-started_at")
    rows = Outage.objects.filter(
        Q(ended_at__isnull=True)
        | Q(pk__in=Subquery(latest_ended.values("pk")[:RECENT_ENDED_OUTAGES]))
    ).annotate(
        incident_pk=F("incidents__pk"),
        incident_title=F("incidents__title"),
        # Began inside an announced maintenance window: expected (ops.maintenance.expected).
        expected_title=F("expected_maintenance__title"),
    )
    shown: dict[int, Outage] = {}
    for row in rows:
        outage = shown.setdefault(row.pk, row)
        if outage is row:
            outage.linked_incidents = []
        if row.incident_pk is not None:
            outage.linked_incidents.append(Incident(pk=row.incident_pk, title=row.incident_title))
    for outage in shown.values():
        outage.linked_incidents.sort(key=lambda incident: incident.pk)
    # Open ones first, then ended ones, each newest first (as before).
    return sorted(shown.values(), key=lambda o: (o.ended_at is not None, -o.started_at.timestamp()))


def operations_shown() -> list[Operation]:
    """The newest queued/running operations and the latest finished ones, in one query: the ids
    from two bounded reads of the newest-first index (UNION ALL of two LIMITed selects), then
    those rows with their stack and tenant. (`pk IN (…) OR pk IN (…)` made PostgreSQL scan every
    operation and hash every stack.) The JSON parameters and result are not read."""
    newest = Operation.objects.order_by("-requested_at", "-id").values("pk")
    in_flight_sql, in_flight_params = newest.filter(status__in=IN_FLIGHT_OPERATION_STATUSES)[
        :IN_FLIGHT_OPERATIONS_SHOWN
    ].query.sql_with_params()
    finished_sql, finished_params = newest.exclude(status__in=IN_FLIGHT_OPERATION_STATUSES)[
        :FINISHED_OPERATIONS_SHOWN
    ].query.sql_with_params()
    ids = RawSQL(
        f"SELECT in_flight.pk FROM ({in_flight_sql}) in_flight UNION ALL "
        f"SELECT finished.pk FROM ({finished_sql}) finished",
        (*in_flight_params, *finished_params),
    )
    shown = (
        Operation.objects.filter(pk__in=ids)
        .select_related("stack__tenant")
        .defer("parameters", "result", "stack__status_detail", "stack__tenant__notes")
    )
    return sorted(shown, key=lambda o: (not o.is_in_flight, -o.requested_at.timestamp(), -o.pk))


LISTED_COLUMNS = (
    "row_kind",
    "row_id",
    "text1",
    "text2",
    "text3",
    "text4",
    "number",
    "number2",
    "time1",
    "time2",
    "time3",
    "time4",
    "time5",
)
NO_TIME = ("time3", "time4", "time5")


def _listed(kind: str, queryset: Any, **columns: Any) -> Any:
    """One part of `small_lists`' UNION: the rows as the shared columns, unordered."""
    no_time = Cast(Value(None), DateTimeField())
    columns = {"number2": Value(0), **{name: no_time for name in NO_TIME}, **columns}
    ordered = {name: columns[name] for name in LISTED_COLUMNS[2:]}
    return queryset.order_by().values(row_kind=Value(kind), row_id=F("id"), **ordered)


def _union_rows(parts: list[Any], raw: tuple[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The parts' rows and the raw part's, in one UNION ALL query (each part wrapped in its own
    SELECT, as SQLite allows no LIMIT in a compound's parts)."""
    compiled = [part.query.sql_with_params() for part in parts] + [raw]
    sql = " UNION ALL ".join(
        f"SELECT * FROM ({part_sql}) AS part{i}" for i, (part_sql, _) in enumerate(compiled)
    )
    params = tuple(param for _, part_params in compiled for param in part_params)
    connection = connections[Procedure.objects.db]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [dict(zip(LISTED_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:  # the raw cursor gives SQLite's text times: as the ORM would read them
        for name in ("time1", "time2", *NO_TIME):
            if isinstance(row[name], str):
                row[name] = parse_datetime(row[name])
            if row[name] is not None and timezone.is_naive(row[name]):
                row[name] = timezone.make_aware(row[name], UTC)
    return rows


def small_lists(
    now: datetime,
) -> tuple[list[Procedure], list[MaintenanceWindow], list[NotificationChannel], dict[str, Any]]:
    """The active procedures, the maintenance windows shown (announced, not over yet or in
    their monitored day) with their checks' state, the failing notification channels and the
    Coolify budget, in one query (a UNION ALL of the reads, each row in the same columns)
    whatever there is: lists of configuration, a handful of rows each. The rows come back as
    unsaved instances holding what the dashboard shows of them."""
    no_time = Cast(Value(None), DateTimeField())
    procedures = _listed(
        "procedure",
        Procedure.objects.filter(active=True),
        text1=F("title"),
        text2=F("when"),
        text3=F("category"),
        text4=F("slug"),
        number=F("version"),
        time1=no_time,
        time2=no_time,
    )
    windows = _listed(
        "maintenance",
        MaintenanceWindow.objects.announced().filter(
            Q(ends_at__gt=now) | Q(ends_at__gt=now - MONITORED, summarised_at__isnull=True)
        ),
        text1=F("title"),
        text2=F("coolify_version_before"),
        text3=F("coolify_version_after"),
        text4=F("backup_name"),
        number=Coalesce(F("stopped_count"), Value(-1)),
        number2=Coalesce(Cast(KT("health_summary__outages"), IntegerField()), Value(0)),
        time1=F("starts_at"),
        time2=F("ends_at"),
        time3=F("before_checked_at"),
        time4=F("after_checked_at"),
        time5=F("summarised_at"),
    )
    channels = _listed(
        "channel",
        failing_channels(),
        text1=F("label"),
        text2=F("url_hint"),
        text3=F("kind"),
        text4=Coalesce(F("contact__team"), F("user__username")),
        number=F("consecutive_failures"),
        time1=F("last_failure_at"),
        time2=no_time,
    )
    found: dict[str, list[dict[str, Any]]] = {
        "procedure": [],
        "maintenance": [],
        "channel": [],
        "budget": [],
    }
    for row in _union_rows([procedures, windows, channels], dashboard_budget.budget_part(NO_TIME)):
        found[row["row_kind"]].append(row)
    listed_procedures = sorted(
        (
            Procedure(
                pk=row["row_id"],
                title=row["text1"],
                when=row["text2"],
                category=row["text3"],
                slug=row["text4"],
                version=int(row["number"]),
            )
            for row in found["procedure"]
        ),
        key=lambda procedure: (procedure.category, procedure.title, -procedure.version),
    )
    listed_windows = sorted(
        (_window(row) for row in found["maintenance"]),
        key=lambda window: (window.ends_at <= now, window.starts_at, window.pk),
    )[:MAINTENANCE_SHOWN]
    for window in listed_windows:
        window.on_now = window.is_on(now)
        window.over = window.ends_at <= now
    listed_channels = []
    for row in sorted(found["channel"], key=lambda row: (-row["number"], row["row_id"])):
        channel = NotificationChannel(
            pk=row["row_id"],
            label=row["text1"],
            url_hint=row["text2"],
            kind=row["text3"],
            consecutive_failures=row["number"],
            last_failure_at=row["time1"],
        )
        channel.owner_name = row["text4"]
        listed_channels.append(channel)
    coolify_budget = dashboard_budget.budget_shown(next(iter(found["budget"]), None), now)
    return (
        listed_procedures,
        listed_windows,
        listed_channels[:FAILING_CHANNELS_SHOWN],
        coolify_budget,
    )


def _window(row: dict[str, Any]) -> MaintenanceWindow:
    """A window as the dashboard shows it: times and its checks' state."""
    window = MaintenanceWindow(
        pk=row["row_id"],
        title=row["text1"],
        starts_at=row["time1"],
        ends_at=row["time2"],
        coolify_version_before=row["text2"] or "",
        coolify_version_after=row["text3"] or "",
        backup_name=row["text4"] or "",
        stopped_count=None if row["number"] < 0 else row["number"],
        before_checked_at=row["time3"],
        after_checked_at=row["time4"],
        summarised_at=row["time5"],
    )
    window.outages_after = int(row["number2"] or 0)
    return window


def dashboard_data() -> DashboardData:
    """Everything the dashboard shows, evaluated (so the template adds no queries)."""
    now = timezone.now()
    procedures, maintenance, channels, coolify_budget = small_lists(now)
    return DashboardData(
        rows=check_rows(now),
        outages=outages_shown(),
        open_incidents=list(
            Incident.objects.unresolved()
            .select_related("escalation")
            .order_by("severity", "opened_at")
        ),
        reconcile=latest_reconcile(),
        pocketbase_sync={
            **pocketbase_outbox.stack_counts(),
            "url": reverse("admin:stacks_stack_changelist") + "?pocketbase_sync=",
        },
        contacts=list(EscalationContact.objects.all()),
        procedures=procedures,
        open_runs=list(
            ChecklistRun.objects.filter(status=RunStatus.OPEN).select_related(
                "procedure", "stack__tenant", "tenant"
            )[:OPEN_RUNS_SHOWN]
        ),
        operations=operations_shown(),
        maintenance=maintenance,
        failing_channels=channels,
        coolify_budget=coolify_budget,
        status_page_url=reverse("status_page"),
    )


_recent: tuple[float, DashboardData] | None = None
_recent_lock = threading.Lock()


def recent_dashboard_data() -> DashboardData:
    """dashboard_data(), reused within this process for DASHBOARD_CACHE_SECONDS (3): a page
    many people keep open (and reload) costs the database one computation every few seconds,
    not one per view. Health checks run every few minutes, so a few seconds is not stale."""
    global _recent
    max_age = settings.DASHBOARD_CACHE_SECONDS
    if max_age <= 0:
        return dashboard_data()
    with _recent_lock:  # one computation at a time; the others wait for it, then share it
        now = time.monotonic()
        if _recent is None or now - _recent[0] >= max_age:
            _recent = (now, dashboard_data())
        return _recent[1]
