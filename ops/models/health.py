"""Health checks: each run's result per check, its daily rollup, outages (consecutive failures
as one row), and each live domain's HTTPS state with its changes.

Results are kept HEALTH_RESULT_RETENTION_DAYS, rollups HEALTH_ROLLUP_RETENTION_DAYS (pruned by
ops/retention.py). A result and its rollup are written in one transaction, so uptime over any
window is exact: the rollups of its whole days plus the results of the part-day it starts in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from ops.models.durations import duration_text


class CheckStatus(models.TextChoices):
    OK = "ok", "OK"
    WARNING = "warning", "Warning"
    DOWN = "down", "Down"

    @property
    def css_class(self) -> str:
        """The badge's classes (colours in cfadmin/static/cfadmin/cfadmin.css)."""
        return f"cf-check cf-check-{self.value}"

    @property
    def colour(self) -> str:
        """The same colour as the badge's, for SVG (a fill attribute, not a style)."""
        return CHECK_COLOURS[self.value]


CHECK_COLOURS = {"ok": "#198754", "warning": "#fd7e14", "down": "#dc3545"}


class HealthCheckResult(models.Model):
    """One run of one check: status, what it saw, how long it took."""

    check_name = models.CharField("check", max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=CheckStatus.choices)
    critical = models.BooleanField(default=False)
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-checked_at", "-id"]
        # The admin list's order, alone and under its status and check filters (or a search
        # for a status): each a walk of one index that stops after a page.
        indexes = [
            models.Index(fields=["check_name", "-checked_at", "-id"], name="ops_result_check_idx"),
            models.Index(fields=["-checked_at", "-id"], name="ops_result_latest_idx"),
            models.Index(fields=["status", "-checked_at", "-id"], name="ops_result_status_idx"),
        ]
        permissions = [("run_healthcheck", "Can run the health checks on demand")]

    def __str__(self) -> str:
        return f"{self.check_name}: {self.status}"

    @property
    def check_status(self) -> CheckStatus:
        return CheckStatus(self.status)


class OutageQuerySet(models.QuerySet):
    def open(self) -> OutageQuerySet:
        return self.filter(ended_at__isnull=True)


class Outage(models.Model):
    """Consecutive failures of one check, as one event (a flapping dependency is one row)."""

    check_name = models.CharField("check", max_length=64, db_index=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=1)
    first_message = models.TextField(blank=True)
    last_message = models.TextField(blank=True)

    objects = OutageQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["check_name"],
                condition=Q(ended_at__isnull=True),
                name="one_open_outage_per_check",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.check_name} outage from {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self) -> timedelta:
        return (self.ended_at or timezone.now()) - self.started_at

    @property
    def duration_text(self) -> str:
        return duration_text(self.duration)


def utc_day(moment: datetime) -> date:
    """The UTC calendar day a moment falls in: rollups count results per UTC day."""
    return moment.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class HealthDailyRollup(models.Model):
    """How one check did on one UTC day: counts per status. Kept much longer than results."""

    check_name = models.CharField("check", max_length=64)
    day = models.DateField()
    total = models.PositiveIntegerField(default=0)
    ok = models.PositiveIntegerField(default=0)
    warning = models.PositiveIntegerField(default=0)
    down = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "check_name"]
        constraints = [
            models.UniqueConstraint(fields=["check_name", "day"], name="one_rollup_per_check_day")
        ]
        indexes = [models.Index(fields=["day"], name="ops_rollup_day_idx")]

    def __str__(self) -> str:
        return f"{self.check_name} {self.day}: {self.ok}/{self.total} OK"

    @classmethod
    def count_result(cls, check_name: str, status: str, checked_at: datetime) -> None:
        """Add one result to its day's counts. Increments in the database (F), so two runs
        recording at once both count; the unique constraint settles who creates the row.
        Call it in the transaction that stores the result: both commit or neither does."""
        day = utc_day(checked_at)
        increments = {"total": F("total") + 1}
        if status in STATUS_COUNTERS:
            column = STATUS_COUNTERS[status]
            increments[column] = F(column) + 1
        rows = cls.objects.filter(check_name=check_name, day=day)
        if rows.update(**increments):
            return
        try:
            with transaction.atomic():  # a savepoint: a lost race must not break the caller's
                cls.objects.create(
                    check_name=check_name,
                    day=day,
                    total=1,
                    **({STATUS_COUNTERS[status]: 1} if status in STATUS_COUNTERS else {}),
                )
        except IntegrityError:  # another run created it between our update and insert
            rows.update(**increments)


STATUS_COUNTERS = {
    CheckStatus.OK.value: "ok",
    CheckStatus.WARNING.value: "warning",
    CheckStatus.DOWN.value: "down",
}


def rebuild_rollups(days: Iterable[date] | None = None) -> int:
    """Recount rollups from the results (all days that have results, or only `days`), writing
    absolute counts. For results stored without `record()` (a data migration, a benchmark's
    bulk load); never for a day whose oldest results were already pruned. Returns rows written."""
    results = HealthCheckResult.objects.all()
    if days is not None:
        days = sorted(set(days))
        if not days:
            return 0
        span = Q()
        for day in days:
            span |= Q(checked_at__gte=day_start(day), checked_at__lt=day_start(day) + ONE_DAY)
        results = results.filter(span)
    counts: dict[tuple[str, date], dict[str, int]] = {}
    for row in (
        results.annotate(day=TruncDate("checked_at", tzinfo=UTC))
        .values("check_name", "day", "status")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        key = (row["check_name"], row["day"])
        bucket = counts.setdefault(key, {"total": 0, "ok": 0, "warning": 0, "down": 0})
        bucket["total"] += row["n"]
        if row["status"] in STATUS_COUNTERS:
            bucket[STATUS_COUNTERS[row["status"]]] += row["n"]
    with transaction.atomic():
        for (check_name, day), values in counts.items():
            HealthDailyRollup.objects.update_or_create(
                check_name=check_name, day=day, defaults=values
            )
    return len(counts)


ONE_DAY = timedelta(days=1)


def uptimes(
    check_names: Iterable[str], windows: dict[str, timedelta], now: datetime | None = None
) -> dict[str, dict[str, float | None]]:
    """Share of OK results per check over each window ending `now`, in two grouped queries:
    the rollups of the whole days inside the window (today's included: it is counted as results
    arrive) and the results of the part-day where the window starts. Exact while a window is
    no longer than the result retention; None where a check has no result in a window."""
    now = now or timezone.now()
    names = list(check_names)
    starts = {label: now - delta for label, delta in windows.items()}
    # The first whole day of each window; the results before it come from the results table.
    first_days = {label: utc_day(start) + ONE_DAY for label, start in starts.items()}
    if not names or not windows:
        return {name: {} for name in names}
    totals: dict[str, dict[str, list[int]]] = {
        name: {label: [0, 0] for label in windows} for name in names
    }
    rollup_sums: dict[str, Any] = {}
    for i, first_day in enumerate(first_days.values()):
        inside = Q(day__gte=first_day, day__lte=utc_day(now))
        rollup_sums[f"total{i}"] = Sum("total", filter=inside)
        rollup_sums[f"ok{i}"] = Sum("ok", filter=inside)
    for row in (
        HealthDailyRollup.objects.filter(check_name__in=names, day__gte=min(first_days.values()))
        .values("check_name")
        .annotate(**rollup_sums)
        .order_by()
    ):
        for i, label in enumerate(windows):
            totals[row["check_name"]][label][0] += row[f"total{i}"] or 0
            totals[row["check_name"]][label][1] += row[f"ok{i}"] or 0
    edge_counts: dict[str, Any] = {}
    any_edge = Q()
    for i, label in enumerate(windows):
        edge = Q(checked_at__gte=starts[label], checked_at__lt=day_start(first_days[label]))
        any_edge |= edge
        edge_counts[f"total{i}"] = Count("pk", filter=edge)
        edge_counts[f"ok{i}"] = Count("pk", filter=edge & Q(status=CheckStatus.OK))
    for row in (
        HealthCheckResult.objects.filter(any_edge, check_name__in=names)
        .values("check_name")
        .annotate(**edge_counts)
        .order_by()
    ):
        for i, label in enumerate(windows):
            totals[row["check_name"]][label][0] += row[f"total{i}"]
            totals[row["check_name"]][label][1] += row[f"ok{i}"]
    return {
        name: {label: (ok / total if total else None) for label, (total, ok) in by_window.items()}
        for name, by_window in totals.items()
    }


def uptime(check_name: str, since: datetime, now: datetime | None = None) -> float | None:
    """Share of results that were OK since a moment (None when there are none)."""
    now = now or timezone.now()
    return uptimes([check_name], {"since": now - since}, now)[check_name]["since"]


# --- HTTPS of live domains -------------------------------------------------------------------


class HttpsStatus(models.TextChoices):
    OK = "ok", "Serves HTTPS"
    EXPIRING = "expiring", "Certificate expiring"
    FAILING = "failing", "Failing"
    NOT_CHECKED = "not_checked", "Not checked (external probes off)"


class HttpsDomainState(models.Model):
    """A live domain's HTTPS as last seen: written on every probe, one row per domain."""

    domain = models.CharField(max_length=253, unique=True)
    status = models.CharField(max_length=16, choices=HttpsStatus.choices)
    since = models.DateTimeField(help_text="When the domain entered this status.")
    last_checked_at = models.DateTimeField(db_index=True)
    message = models.TextField(blank=True)
    not_after = models.DateTimeField("certificate valid until", null=True, blank=True)

    class Meta:
        ordering = ["domain"]
        indexes = [models.Index(fields=["status", "domain"], name="ops_https_status_idx")]

    def __str__(self) -> str:
        return f"{self.domain}: {self.get_status_display()}"


class HttpsDomainChange(models.Model):
    """A domain's HTTPS status changed (the history: written only on a change)."""

    domain = models.CharField(max_length=253)
    status = models.CharField(max_length=16, choices=HttpsStatus.choices)
    previous_status = models.CharField(
        max_length=16, choices=HttpsStatus.choices, blank=True, help_text="Empty: first check."
    )
    changed_at = models.DateTimeField(db_index=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["domain", "-changed_at"], name="ops_https_change_idx")]

    def __str__(self) -> str:
        return f"{self.domain}: {self.previous_status or 'new'} → {self.status}"
