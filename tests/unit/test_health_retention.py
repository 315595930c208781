"""Health data with a lifetime: results counted into daily and hourly rollups as they are
stored, so uptime is the same before and after results are pruned; the prune job (batches,
retention settings); HTTPS states written only on change, the due-domain plan that keeps 10,000
domains checked at least hourly, probing within a budget; expired sessions cleared on a
schedule."""

from __future__ import annotations

import itertools
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule

from cfadmin.schedules import SESSIONS_SCHEDULE, declared_schedules, install_schedules
from cfadmin.tasks import clear_expired_sessions_task
from ops import https_domains
from ops.health import CheckOutcome, record
from ops.https_domains import KnownState, Observation, ProbeRun, due_domains, probe_due
from ops.models import (
    CheckStatus,
    HealthCheckResult,
    HealthDailyRollup,
    HealthHourlyRollup,
    HttpsDomainChange,
    HttpsDomainState,
    HttpsStatus,
    count_result,
    rebuild_rollups,
    uptimes,
)
from ops.retention import prune_health_data
from ops.schedules import HEALTH_PRUNE_SCHEDULE
from stacks.choices import StackStatus

NOW = datetime(2026, 11, 30, 15, 37, 12, tzinfo=UTC)  # mid-day: windows start in part-days
WINDOWS = {
    "24 h": timedelta(days=1),
    "7 d": timedelta(days=7),
    "30 d": timedelta(days=30),
    "90 d": timedelta(days=90),
}
STATUSES = [CheckStatus.OK] * 7 + [CheckStatus.WARNING, CheckStatus.DOWN]


def store(check_name: str, status: str, checked_at: datetime) -> None:
    """What ops.health.record does for one result (its rollups counted with it)."""
    HealthCheckResult.objects.create(check_name=check_name, status=status, checked_at=checked_at)
    count_result(check_name, status, checked_at)


def fill_history(days: int, per_day: int, seed: int = 13) -> None:
    """`days` of results for two checks, irregularly spaced, ending just before NOW."""
    rng = random.Random(seed)
    for name in ("coolify_api", "pocketbase"):
        for _ in range(days * per_day):
            moment = NOW - timedelta(seconds=rng.randrange(1, days * 86400))
            store(name, rng.choice(STATUSES), moment)


def counted(check_name: str, since: datetime) -> float | None:
    """The truth: the results in the window counted one by one (before any pruning)."""
    results = HealthCheckResult.objects.filter(
        check_name=check_name, checked_at__gte=since, checked_at__lte=NOW
    )
    total = results.count()
    return results.filter(status=CheckStatus.OK).count() / total if total else None


# --- rollups and uptime ----------------------------------------------------------------------


@pytest.mark.django_db
def test_uptime_is_the_same_before_and_after_pruning(settings):
    settings.HEALTH_RESULT_RETENTION_DAYS = 90
    fill_history(days=120, per_day=12)
    truth = {
        name: {label: counted(name, NOW - delta) for label, delta in WINDOWS.items()}
        for name in ("coolify_api", "pocketbase")
    }
    before = uptimes(["coolify_api", "pocketbase"], WINDOWS, NOW)
    year_before = uptimes(["coolify_api", "pocketbase"], {"1 y": timedelta(days=365)}, NOW)

    pruned = prune_health_data(NOW, batch=97)  # batches that do not divide the rows

    assert pruned["results"] > 0
    assert not HealthCheckResult.objects.filter(checked_at__lt=NOW - timedelta(days=90)).exists()
    assert HealthCheckResult.objects.filter(checked_at__gte=NOW - timedelta(days=90)).exists()
    after = uptimes(["coolify_api", "pocketbase"], WINDOWS, NOW)
    for name, by_window in truth.items():
        for label, expected in by_window.items():
            assert before[name][label] == pytest.approx(expected), (name, label)
            assert after[name][label] == pytest.approx(expected), (name, label)
    # Past the results' lifetime, the rollups still hold the year (whole days).
    assert uptimes(["coolify_api", "pocketbase"], {"1 y": timedelta(days=365)}, NOW) == (
        year_before
    )


@pytest.mark.django_db
def test_uptime_costs_two_queries_whatever_the_history():
    fill_history(days=40, per_day=6)
    with CaptureQueriesContext(connection) as queries:
        uptimes(["coolify_api", "pocketbase", "never_run"], WINDOWS, NOW)
    assert len(queries) == 2
    assert uptimes(["never_run"], WINDOWS, NOW) == {"never_run": dict.fromkeys(WINDOWS)}


@pytest.mark.django_db
def test_record_counts_each_result_into_its_day_and_hour_rollups():
    outcomes = [
        CheckOutcome("coolify_api", CheckStatus.OK, "fine"),
        CheckOutcome("disk_usage", CheckStatus.WARNING, "Disk / at 85%"),
    ]
    record(outcomes)
    record(outcomes[:1])

    for model in (HealthDailyRollup, HealthHourlyRollup):
        rollups = {r.check_name: r for r in model.objects.all()}
        assert (rollups["coolify_api"].total, rollups["coolify_api"].ok) == (2, 2)
        disk = rollups["disk_usage"]
        assert (disk.total, disk.ok, disk.warning, disk.down) == (1, 0, 1, 0)
    checked_at = HealthCheckResult.objects.get(check_name="disk_usage").checked_at.astimezone(UTC)
    assert disk.hour == checked_at.replace(minute=0, second=0, microsecond=0)
    assert HealthDailyRollup.objects.get(check_name="disk_usage").day == checked_at.date()


@pytest.mark.django_db
def test_rebuilding_rollups_gives_what_counting_as_stored_gave():
    fill_history(days=10, per_day=20)
    columns = ("check_name", "total", "ok", "warning", "down")
    counted_as_stored = {
        model: set(model.objects.values_list(model.period_field, *columns))
        for model in (HealthDailyRollup, HealthHourlyRollup)
    }
    for model in counted_as_stored:
        model.objects.all().delete()

    rebuild_rollups()

    for model, rows in counted_as_stored.items():
        assert set(model.objects.values_list(model.period_field, *columns)) == rows, model


@pytest.mark.django_db
def test_rollups_are_kept_a_year_then_pruned(settings):
    settings.HEALTH_ROLLUP_RETENTION_DAYS = 366
    store("pocketbase", CheckStatus.OK, NOW - timedelta(days=365))
    store("pocketbase", CheckStatus.OK, NOW - timedelta(days=368))

    prune_health_data(NOW)

    assert list(HealthDailyRollup.objects.values_list("day", flat=True)) == [
        (NOW - timedelta(days=365)).date()
    ]


@pytest.mark.django_db
def test_pruning_a_large_backlog_deletes_in_batches(settings):
    settings.HEALTH_RESULT_RETENTION_DAYS = 1
    HealthCheckResult.objects.bulk_create(
        HealthCheckResult(check_name="x", status="ok", checked_at=NOW - timedelta(days=3))
        for _ in range(250)
    )
    with CaptureQueriesContext(connection) as queries:
        assert prune_health_data(NOW, batch=100)["results"] == 250
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 100 + 100 + 50, each a statement (and transaction) of its own


# --- HTTPS state ------------------------------------------------------------------------------


def seen(domain: str, status: str = HttpsStatus.OK, message: str = "HTTP/1.1 200 OK"):
    return Observation(domain, status, message, NOW + timedelta(days=60), {"host": domain})


@pytest.mark.django_db
def test_https_history_is_written_only_when_a_status_changes():
    first = {d: seen(d) for d in ("a.example.com", "b.example.com")}
    assert https_domains.record_observations(first, NOW) == 2  # first status of each

    assert https_domains.record_observations(first, NOW + timedelta(hours=1)) == 0
    assert HttpsDomainChange.objects.count() == 2
    assert set(HttpsDomainState.objects.values_list("last_checked_at", flat=True)) == {
        NOW + timedelta(hours=1)
    }

    failing = {"a.example.com": seen("a.example.com", HttpsStatus.FAILING, "refused")}
    assert https_domains.record_observations(failing, NOW + timedelta(hours=2)) == 1
    change = HttpsDomainChange.objects.get(previous_status=HttpsStatus.OK)
    assert (change.domain, change.status, change.message) == (
        "a.example.com",
        HttpsStatus.FAILING,
        "refused",
    )
    state = HttpsDomainState.objects.get(domain="a.example.com")
    assert state.since == NOW + timedelta(hours=2)

    # A new error text on a domain still failing: the state says so, no history row.
    failing = {"a.example.com": seen("a.example.com", HttpsStatus.FAILING, "timed out")}
    assert https_domains.record_observations(failing, NOW + timedelta(hours=3)) == 0
    state.refresh_from_db()
    assert (state.message, state.since) == ("timed out", NOW + timedelta(hours=2))


@pytest.mark.django_db
def test_released_domains_lose_their_state_and_old_changes_go(settings, make_stack):
    settings.HEALTH_RESULT_RETENTION_DAYS = 90
    make_stack(status=StackStatus.RUNNING, domains={"webui": "live.example.com"})
    https_domains.record_observations(
        {d: seen(d) for d in ("live.example.com", "gone.example.com")}, NOW - timedelta(days=100)
    )
    https_domains.record_observations(
        {"live.example.com": seen("live.example.com", HttpsStatus.FAILING)}, NOW
    )

    pruned = prune_health_data(NOW)

    assert (pruned["https_states"], pruned["https_changes"]) == (1, 2)
    assert list(HttpsDomainState.objects.values_list("domain", flat=True)) == ["live.example.com"]
    assert list(HttpsDomainChange.objects.values_list("domain", "status")) == [
        ("live.example.com", HttpsStatus.FAILING)
    ]


def test_ten_thousand_domains_are_each_probed_at_least_hourly(settings):
    """The plan over three hours of 5-minute runs that each manage 1,000 probes (32 probes at
    once, ~0.3 s each, ~9.5 s per run): every domain within the first hour, then never more
    than an hour apart; failing ones every run."""
    settings.HEALTHCHECK_INTERVAL_MINUTES = 5
    settings.HTTPS_RECHECK_MINUTES = 60
    settings.HTTPS_FAILING_RECHECK_MINUTES = 0
    live = [f"d{i:05d}.example.com" for i in range(10_000)]
    failing = set(live[::200])  # 50 domains that fail every time
    known: dict[str, KnownState] = {}
    probed_at: dict[str, list[datetime]] = {domain: [] for domain in live}
    start = NOW
    for run in range(36):
        now = start + timedelta(minutes=5 * run)
        for domain in due_domains(live, known, now)[:1000]:
            status = HttpsStatus.FAILING if domain in failing else HttpsStatus.OK
            known[domain] = KnownState(status, now)
            probed_at[domain].append(now)

    assert all(times and times[0] < start + timedelta(hours=1) for times in probed_at.values())
    runs_after_the_first_hour = 36 - 12
    for domain, times in probed_at.items():
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert max(gaps) <= timedelta(hours=1), domain
        if domain in failing:  # never-checked ones go first; then failing ones every run
            assert sum(t >= start + timedelta(hours=1) for t in times) == runs_after_the_first_hour


def test_due_domains_come_never_checked_first_then_most_overdue(settings):
    settings.HEALTHCHECK_INTERVAL_MINUTES = 5
    settings.HTTPS_RECHECK_MINUTES = 60
    settings.HTTPS_FAILING_RECHECK_MINUTES = 0
    known = {
        "fresh.example.com": KnownState(HttpsStatus.OK, NOW - timedelta(minutes=10)),
        "old.example.com": KnownState(HttpsStatus.OK, NOW - timedelta(hours=3)),
        "older.example.com": KnownState(HttpsStatus.OK, NOW - timedelta(hours=5)),
        "failing.example.com": KnownState(HttpsStatus.FAILING, NOW - timedelta(minutes=5)),
    }
    live = [*known, "new.example.com"]

    assert due_domains(live, known, NOW) == [
        "new.example.com",
        "older.example.com",
        "old.example.com",
        "failing.example.com",
    ]


def test_probing_stops_at_the_budget_and_leaves_no_thread_behind():
    def slow_observe(domain: str, timeout: float, cut_short: bool) -> Observation | None:
        time.sleep(min(0.05, timeout))
        return seen(domain)

    started = time.monotonic()
    run = probe_due(
        [f"d{i}.example.com" for i in range(5000)],
        budget=0.5,
        probe_timeout=2.0,
        workers=4,
        observe=slow_observe,
    )
    elapsed = time.monotonic() - started

    assert 0 < len(run.observations) < 5000
    assert run.left == 5000 - len(run.observations)
    assert elapsed < 0.5 + 2.0  # the budget, and a generous margin for a shared machine
    assert not [t for t in threading.enumerate() if t.name.startswith("https-probe")]


def test_a_probe_cut_short_by_the_budget_is_not_a_failure(settings):
    settings.HTTPS_CERT_WARN_DAYS = 14
    calls: list[tuple[float, bool]] = []

    def hang(domain: str, timeout: float, cut_short: bool) -> Observation | None:
        calls.append((timeout, cut_short))
        time.sleep(timeout)
        # What ops.https_domains.observe does with a timeout: inconclusive when cut short.
        return None if cut_short else seen(domain, HttpsStatus.FAILING, "TimeoutError")

    run = probe_due(["a.example.com"], budget=0.3, probe_timeout=5.0, workers=2, observe=hang)

    assert calls == [(pytest.approx(0.3, abs=0.1), True)]
    assert run.observations == {} and run.left == 1
    status, message, details = https_domains.summarise(
        ["a.example.com"], {}, ProbeRun({}, left=1), NOW
    )
    assert status == CheckStatus.OK  # not down: nothing was seen failing
    assert details["left_for_next_run"] == 1 and details["never_checked"] == 1
    assert message == "0 domain(s) serve HTTPS; 1 not probed yet (next runs)"


def test_the_summary_is_down_only_for_failing_domains_and_lists_a_few(settings):
    settings.HTTPS_RECHECK_MINUTES = 60
    live = [f"d{i:02d}.example.com" for i in range(30)]
    known = {d: KnownState(HttpsStatus.FAILING, NOW, "refused") for d in live[:25]}
    run = ProbeRun({d: seen(d) for d in live[25:]}, left=0)

    status, message, details = https_domains.summarise(live, known, run, NOW)

    assert status == CheckStatus.DOWN
    assert message.startswith("HTTPS failing: d00.example.com, d01.example.com")
    assert message.endswith("d19.example.com and 5 more")
    assert (details["failing"], details["ok"], details["live"]) == (25, 5, 30)
    assert len(details["domains"]) == 20


# --- schedules and sessions ------------------------------------------------------------------


@pytest.mark.django_db
def test_pruning_and_session_clearing_are_scheduled_daily():
    install_schedules()
    names = {spec.name: spec for spec in declared_schedules()}
    for name, func in (
        (HEALTH_PRUNE_SCHEDULE, "ops.tasks.prune_health_data_task"),
        (SESSIONS_SCHEDULE, "cfadmin.tasks.clear_expired_sessions_task"),
    ):
        assert names[name].func == func
        schedule = Schedule.objects.get(name=name)
        assert (schedule.func, schedule.minutes, schedule.repeats) == (func, 24 * 60, -1)


@pytest.mark.django_db
def test_expired_sessions_are_cleared():
    now = timezone.now()
    Session.objects.create(session_key="a" * 32, session_data="", expire_date=now - timedelta(1))
    Session.objects.create(session_key="b" * 32, session_data="", expire_date=now + timedelta(1))

    clear_expired_sessions_task()

    assert list(Session.objects.values_list("session_key", flat=True)) == ["b" * 32]
