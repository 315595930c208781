"""Health checks: each run's result per check, its daily and hourly rollups, outages
(consecutive failures as one row), and each live domain's HTTPS state with its changes.

Results and hourly rollups are kept HEALTH_RESULT_RETENTION_DAYS, daily rollups
HEALTH_ROLLUP_RETENTION_DAYS (pruned by ops/retention.py). A result and its rollups are written
in one transaction, so uptime over any window is exact: the daily rollups of its whole days, the
hourly rollups of the whole hours before them, and the results of the part-hour it starts in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from django.db import IntegrityError, models, transaction
from django.db.models import Count, F, Func, Q, Sum
from django.db.models.functions import TruncDate, TruncHour
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
    # Started inside an announced maintenance window (issue 17): expected, still notified.
    expected_maintenance = models.ForeignKey(
        "ops.MaintenanceWindow",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="expected_outages",
    )

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


def utc_hour(moment: datetime) -> datetime:
    """The start of the UTC hour a moment falls in: hourly rollups count results per hour."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class HealthRollup(models.Model):
    """How one check did over one period (its subclass's `period_of`): counts per status.
    A result is counted in every rollup as it is stored (`count_result` below)."""

    period_field: ClassVar[str]  # the column holding the period, part of the unique key

    check_name = models.CharField("check", max_length=64)
    total = models.PositiveIntegerField(default=0)
    ok = models.PositiveIntegerField(default=0)
    warning = models.PositiveIntegerField(default=0)
    down = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True

    @classmethod
    def period_of(cls, moment: datetime) -> date | datetime:
        raise NotImplementedError

    @classmethod
    def count_result(cls, check_name: str, status: str, checked_at: datetime) -> None:
        """Add one result to its period's counts. Increments in the database (F), so two runs
        recording at once both count; the unique constraint settles who creates the row.
        Call it in the transaction that stores the result: both commit or neither does."""
        key = {"check_name": check_name, cls.period_field: cls.period_of(checked_at)}
        increments = {"total": F("total") + 1}
        if status in STATUS_COUNTERS:
            column = STATUS_COUNTERS[status]
            increments[column] = F(column) + 1
        rows = cls.objects.filter(**key)
        if rows.update(**increments):
            return
        try:
            with transaction.atomic():  # a savepoint: a lost race must not break the caller's
                cls.objects.create(
                    **key,
                    total=1,
                    **({STATUS_COUNTERS[status]: 1} if status in STATUS_COUNTERS else {}),
                )
        except IntegrityError:  # another run created it between our update and insert
            rows.update(**increments)


class HealthDailyRollup(HealthRollup):
    """One check's counts on one UTC day. Kept much longer than results."""

    period_field = "day"
    day = models.DateField()

    class Meta:
        ordering = ["-day", "check_name"]
        constraints = [
            models.UniqueConstraint(fields=["check_name", "day"], name="one_rollup_per_check_day")
        ]
        indexes = [models.Index(fields=["day"], name="ops_rollup_day_idx")]

    def __str__(self) -> str:
        return f"{self.check_name} {self.day}: {self.ok}/{self.total} OK"

    @classmethod
    def period_of(cls, moment: datetime) -> date:
        return utc_day(moment)


class HealthHourlyRollup(HealthRollup):
    """One check's counts in one UTC hour (`hour` is its start). Kept as long as results: they
    only serve the part-day where an uptime window starts."""

    period_field = "hour"
    hour = models.DateTimeField()

    class Meta:
        ordering = ["-hour", "check_name"]
        constraints = [
            models.UniqueConstraint(fields=["check_name", "hour"], name="one_rollup_per_check_hour")
        ]
        indexes = [models.Index(fields=["hour"], name="ops_rollup_hour_idx")]

    def __str__(self) -> str:
        return f"{self.check_name} {self.hour:%Y-%m-%d %H:00}: {self.ok}/{self.total} OK"

    @classmethod
    def period_of(cls, moment: datetime) -> datetime:
        return utc_hour(moment)


STATUS_COUNTERS = {
    CheckStatus.OK.value: "ok",
    CheckStatus.WARNING.value: "warning",
    CheckStatus.DOWN.value: "down",
}
ROLLUPS: tuple[type[HealthRollup], ...] = (HealthDailyRollup, HealthHourlyRollup)


def count_result(check_name: str, status: str, checked_at: datetime) -> None:
    """Count one stored result in every rollup, in the caller's transaction."""
    for rollup in ROLLUPS:
        rollup.count_result(check_name, status, checked_at)


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
    with transaction.atomic():
        return recount(HealthDailyRollup, TruncDate("checked_at", tzinfo=UTC), results) + recount(
            HealthHourlyRollup, TruncHour("checked_at", tzinfo=UTC), results
        )


def recount(rollup: type[HealthRollup], period: Func, results: models.QuerySet) -> int:
    """Write `rollup`'s rows from `results` grouped by `period` in SQL (existing rows of those
    periods updated, new ones created in batches). Returns rows written."""
    counters = {
        column: Count("pk", filter=Q(status=status)) for status, column in STATUS_COUNTERS.items()
    }
    field = rollup.period_field
    counts = {
        (row["check_name"], row[field]): row
        for row in results.annotate(**{field: period})
        .values("check_name", field)
        .annotate(total=Count("pk"), **counters)
        .order_by()
    }
    columns = ["total", *STATUS_COUNTERS.values()]
    existing = []
    if counts:
        periods = [when for _, when in counts]
        between = {f"{field}__gte": min(periods), f"{field}__lte": max(periods)}
        for row in rollup.objects.filter(**between).iterator():
            values = counts.pop((row.check_name, getattr(row, field)), None)
            if values is not None:
                for column in columns:
                    setattr(row, column, values[column])
                existing.append(row)
    rollup.objects.bulk_update(existing, columns, batch_size=1000)
    rollup.objects.bulk_create([rollup(**values) for values in counts.values()], batch_size=1000)
    return len(existing) + len(counts)


ONE_DAY = timedelta(days=1)
ONE_HOUR = timedelta(hours=1)


def uptimes(
    check_names: Iterable[str], windows: dict[str, timedelta], now: datetime | None = None
) -> dict[str, dict[str, float | None]]:
    """Share of OK results per check over each window ending `now`, in two grouped queries
    whatever the number of checks and windows: the daily rollups of the whole days inside the
    window (today's included: it is counted as results arrive) with the hourly rollups of the
    whole hours before its first whole day (one UNION), and the results of the part-hour where
    it starts. Exact while a window is no longer than the result retention; None where a check
    has no result in a window."""
    now = now or timezone.now()
    names = list(check_names)
    if not names or not windows:
        return {name: {} for name in names}
    starts = {label: now - delta for label, delta in windows.items()}
    first_hours = {label: ceil_hour(start) for label, start in starts.items()}
    first_days = {label: ceil_day(hour) for label, hour in first_hours.items()}
    days = per_check(
        HealthDailyRollup.objects.filter(day__gte=min(first_days.values()), day__lte=utc_day(now)),
        names,
        [Q(day__gte=day) for day in first_days.values()],
        counted=True,
    )
    # Each window's hours are a part-day near its start: bounded one by one (OR, so that each
    # is an index range), never the whole span from the oldest window's start.
    this_hour = utc_hour(now)
    hour_spans = [
        Q(hour__gte=first_hours[label], hour__lt=day_start(first_days[label]), hour__lte=this_hour)
        for label in windows
    ]
    hours = per_check(
        HealthHourlyRollup.objects.filter(any_of(hour_spans)), names, hour_spans, counted=True
    )
    edges = [
        Q(checked_at__gte=starts[label], checked_at__lt=first_hours[label]) for label in windows
    ]
    results = per_check(
        HealthCheckResult.objects.filter(any_of(edges)), names, edges, counted=False
    )
    totals = {name: [[0, 0] for _ in windows] for name in names}
    for rows in (days.union(hours, all=True), results):
        for row in rows:
            for i, by_window in enumerate(totals[row["check_name"]]):
                by_window[0] += row[f"total{i}"] or 0
                by_window[1] += row[f"ok{i}"] or 0
    return {
        name: {
            label: (ok / total if total else None)
            for label, (total, ok) in zip(windows, counts, strict=True)
        }
        for name, counts in totals.items()
    }


def any_of(spans: list[Q]) -> Q:
    either = Q()
    for span in spans:
        either |= span
    return either


def ceil_hour(moment: datetime) -> datetime:
    """The first UTC hour start at or after a moment."""
    hour = utc_hour(moment)
    return hour if hour == moment else hour + ONE_HOUR


def ceil_day(hour: datetime) -> date:
    """The first UTC day starting at or after an hour start."""
    return utc_day(hour) + (ONE_DAY if hour.hour else timedelta(0))


def per_check(
    rows: models.QuerySet, names: list[str], spans: list[Q], *, counted: bool
) -> models.QuerySet:
    """A grouped query: per check, `total<i>` and `ok<i>` over the i-th window's span of `rows`,
    which are rollups (`counted`: their counters are summed) or results (counted here)."""
    aggregates: dict[str, Any] = {}
    for i, span in enumerate(spans):
        if counted:
            aggregates[f"total{i}"] = Sum("total", filter=span)
            aggregates[f"ok{i}"] = Sum("ok", filter=span)
        else:
            aggregates[f"total{i}"] = Count("pk", filter=span)
            aggregates[f"ok{i}"] = Count("pk", filter=span & Q(status=CheckStatus.OK))
    return rows.filter(check_name__in=names).values("check_name").annotate(**aggregates).order_by()


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
