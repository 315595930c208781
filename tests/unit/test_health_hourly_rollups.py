"""Hourly health rollups (issue 13): uptime over any window, `now` at any minute, equals counting
its results one by one, while reading only the part-hour it starts in from the results; the
same after pruning; two queries for any number of checks and windows; a lost race to create
a rollup still counts; the migration's backfill and the rebuild agree with counting as stored."""

from __future__ import annotations

import importlib
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.db import transaction
from django.db.models import QuerySet

from ops.models import (
    CheckStatus,
    HealthCheckResult,
    HealthDailyRollup,
    HealthHourlyRollup,
    count_result,
    rebuild_rollups,
    uptime,
    uptimes,
)
from ops.models.health import ceil_hour
from ops.retention import prune_health_data

BACKFILL = importlib.import_module("ops.migrations.0018_health_hourly_rollup")
CHECKS = ["coolify_api", "pocketbase", "disk_usage"]
WINDOWS = {
    "24 h": timedelta(days=1),
    "7 d": timedelta(days=7),
    "30 d": timedelta(days=30),
    "90 d": timedelta(days=90),
}
STATUSES = [CheckStatus.OK] * 6 + [CheckStatus.WARNING, CheckStatus.DOWN, "unknown"]
# Odd minutes, an exact hour, an exact midnight, a second before midnight.
NOWS = [
    datetime(2026, 11, 30, 15, 37, 12, 345678, tzinfo=UTC),
    datetime(2026, 11, 30, 0, 59, 59, tzinfo=UTC),
    datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC),
    datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC),
    datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC),
]
ROLLUP_COLUMNS = ("check_name", "total", "ok", "warning", "down")


def store(check_name: str, status: str, checked_at: datetime) -> None:
    """What ops.health.record does for one result: the result and its rollups together."""
    HealthCheckResult.objects.create(check_name=check_name, status=status, checked_at=checked_at)
    count_result(check_name, status, checked_at)


def fill(now: datetime, days: int = 95, per_day: int = 6, seed: int = 7) -> None:
    """Results up to `now`: random moments, plus some on and just around the boundaries that
    matter (each window's start, whole hours and midnights near it, `now` itself)."""
    rng = random.Random(seed)
    edges = [now]
    for delta in WINDOWS.values():
        start = now - delta
        first_hour = ceil_hour(start)
        edges += [start, start - timedelta(microseconds=1), first_hour]
        edges += [first_hour - timedelta(microseconds=1), first_hour + timedelta(hours=3)]
        midnight = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), UTC)
        edges += [midnight, midnight - timedelta(seconds=1)]
    for name in CHECKS:
        moments = [
            now - timedelta(seconds=rng.randrange(0, days * 86400)) for _ in range(days * per_day)
        ]
        for moment in moments + [edge for edge in edges if edge <= now]:
            store(name, rng.choice(STATUSES), moment)


def counted(check_name: str, since: datetime, now: datetime) -> float | None:
    """The truth: the results in the window, counted one by one."""
    results = HealthCheckResult.objects.filter(
        check_name=check_name, checked_at__gte=since, checked_at__lte=now
    )
    total = results.count()
    return results.filter(status=CheckStatus.OK).count() / total if total else None


def truth(now: datetime) -> dict[str, dict[str, float | None]]:
    return {
        name: {label: counted(name, now - delta, now) for label, delta in WINDOWS.items()}
        for name in CHECKS
    }


def assert_same(found: dict, expected: dict) -> None:
    for name, by_window in expected.items():
        for label, value in by_window.items():
            assert found[name][label] == pytest.approx(value), (name, label)


@pytest.mark.django_db
@pytest.mark.parametrize("now", NOWS, ids=lambda now: now.strftime("%dT%H:%M:%S.%f"))
def test_uptime_equals_counting_the_results_for_any_now(now):
    fill(now)
    expected = truth(now)
    assert all(value is not None for by in expected.values() for value in by.values())

    assert_same(uptimes(CHECKS, WINDOWS, now), expected)
    # The same through uptime(): a moment instead of a window.
    assert uptime("pocketbase", now - timedelta(days=7), now) == pytest.approx(
        expected["pocketbase"]["7 d"]
    )


@pytest.mark.django_db
def test_only_the_part_hour_where_a_window_starts_is_read_from_the_results():
    """Whole hours come from the hourly rollups: with every other result gone (as if never
    kept), uptime is unchanged."""
    now = NOWS[0]
    fill(now, days=40)
    expected = truth(now)
    part_hours = HealthCheckResult.objects.none()
    for delta in WINDOWS.values():
        start = now - delta
        part_hours |= HealthCheckResult.objects.filter(
            checked_at__gte=start, checked_at__lt=ceil_hour(start)
        )
    kept = set(part_hours.values_list("pk", flat=True))
    assert kept  # the windows start at odd minutes: each part-hour holds results
    HealthCheckResult.objects.exclude(pk__in=kept).delete()

    assert_same(uptimes(CHECKS, WINDOWS, now), expected)


@pytest.mark.django_db
def test_uptime_is_the_same_after_pruning_results_and_hourly_rollups(settings):
    settings.HEALTH_RESULT_RETENTION_DAYS = 30
    now = NOWS[0]
    fill(now, days=45)
    windows = {"24 h": WINDOWS["24 h"], "7 d": WINDOWS["7 d"], "30 d": WINDOWS["30 d"]}
    before = uptimes(CHECKS, windows, now)
    cutoff = now - timedelta(days=30)

    pruned = prune_health_data(now)

    assert pruned["results"] > 0 and pruned["hourly_rollups"] > 0
    # Hours ended before the results' cutoff go; the hour it falls in stays (its later results
    # are still kept).
    oldest = HealthHourlyRollup.objects.order_by("hour").first()
    assert oldest.hour == cutoff.replace(minute=0, second=0, microsecond=0)
    assert HealthDailyRollup.objects.filter(day__lt=cutoff.date()).exists()  # kept a year
    assert uptimes(CHECKS, windows, now) == before


@pytest.mark.django_db
@pytest.mark.parametrize("checks", [1, 5])
def test_uptime_costs_two_queries_for_any_number_of_checks(checks, django_assert_num_queries):
    names = [f"check_{i}" for i in range(checks)]
    now = NOWS[0]
    for i, name in enumerate(names):
        for hours in range(0, 24 * 40, 5):
            store(
                name, STATUSES[(i + hours) % len(STATUSES)], now - timedelta(hours=hours, minutes=i)
            )

    with django_assert_num_queries(2):
        found = uptimes([*names, "never_run"], WINDOWS, now)

    assert found["never_run"] == dict.fromkeys(WINDOWS)
    assert all(found[name]["90 d"] is not None for name in names)


@pytest.mark.django_db
@pytest.mark.parametrize("rollup", [HealthDailyRollup, HealthHourlyRollup])
def test_a_lost_race_to_create_the_rollup_still_counts(rollup, monkeypatch):
    """Another run creates the period's row between our UPDATE (0 rows) and our INSERT: the
    INSERT fails in its savepoint, the UPDATE is retried, the caller's transaction goes on."""
    at = NOWS[0]
    rollup.count_result("pocketbase", CheckStatus.OK, at)  # the other run's row
    real_update = QuerySet.update
    missed = []

    def update(self, **kwargs):
        if self.model is rollup and not missed:
            missed.append(True)
            return 0  # as if the row did not exist yet when we looked
        return real_update(self, **kwargs)

    monkeypatch.setattr(QuerySet, "update", update)
    with transaction.atomic():
        rollup.count_result("pocketbase", CheckStatus.DOWN, at)
        HealthCheckResult.objects.create(check_name="pocketbase", status="down", checked_at=at)

    assert missed
    row = rollup.objects.get()
    assert (row.total, row.ok, row.warning, row.down) == (2, 1, 0, 1)
    assert HealthCheckResult.objects.count() == 1


@pytest.mark.django_db
def test_count_result_counts_in_both_rollups():
    at = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    count_result("disk_usage", CheckStatus.WARNING, at)
    count_result("disk_usage", CheckStatus.OK, at + timedelta(seconds=1))  # the next day

    assert list(
        HealthDailyRollup.objects.order_by("day").values_list("day", "total", "warning")
    ) == [
        (at.date(), 1, 1),
        (at.date() + timedelta(days=1), 1, 0),
    ]
    assert list(HealthHourlyRollup.objects.order_by("hour").values_list("hour", "ok")) == [
        (datetime(2026, 11, 30, 23, tzinfo=UTC), 0),
        (datetime(2026, 12, 1, 0, tzinfo=UTC), 1),
    ]


def rollup_rows(model) -> set[tuple]:
    return set(model.objects.values_list(model.period_field, *ROLLUP_COLUMNS))


@pytest.mark.django_db
def test_rebuild_and_the_migration_backfill_give_what_counting_as_stored_gave():
    fill(NOWS[0], days=4, per_day=30)
    hourly, daily = rollup_rows(HealthHourlyRollup), rollup_rows(HealthDailyRollup)
    assert len(hourly) > 200  # many hours of three checks

    HealthHourlyRollup.objects.all().delete()
    BACKFILL.count_existing_results(apps, None)  # what `migrate` runs, on the stored results
    assert rollup_rows(HealthHourlyRollup) == hourly

    HealthHourlyRollup.objects.filter(hour__day=NOWS[0].day).delete()  # some created again,
    for model in (HealthDailyRollup, HealthHourlyRollup):  # the others updated, not duplicated
        model.objects.update(total=0, ok=0, warning=0, down=0)
    rebuild_rollups()
    assert rollup_rows(HealthHourlyRollup) == hourly
    assert rollup_rows(HealthDailyRollup) == daily
