"""One queued at a time: "Run health checks now", "Reconcile now" and "Run automatic checks".

Each spends Coolify's 200 calls a minute; a second request while the first is queued or running
says who asked for that one and when, and queues nothing. A request is done once the job's own
records show a run that began after it; a request older than the staleness bound (its worker
died) no longer blocks. Nothing is queued here: `enqueue` is replaced by a recorder.
"""

from __future__ import annotations

import importlib
import re
import threading
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.contrib.messages import get_messages
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from cfadmin.models import AuditAction, AuditEvent
from cfadmin.queued_once import AlreadyQueued
from ops import health, probes, tasks
from ops.models import ChecklistRun, CheckStatus, HealthCheckResult, Procedure
from ops.procedures import DAILY_HEALTH_CHECK
from stacks import reconcile
from stacks.models import ReconcileRun

pytestmark = pytest.mark.django_db

RUN_HEALTH = reverse("admin:ops_run_healthchecks")
RUN_RECONCILE = reverse("admin:stacks_reconcile_run")
ALREADY = re.compile(
    r"^(?P<label>[\w ]+): one is already queued \(requested by (?P<by>\S+) at "
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+\)\.$"
)


def messages_of(response) -> list[str]:
    """The messages the page a POST redirected to shows (and so uses up)."""
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    """What the admin views hand to the worker (no worker runs here)."""
    calls: list[tuple] = []

    def record(func: str, *args: object) -> None:
        calls.append((func, *args))

    monkeypatch.setattr("cfadmin.jobs.enqueue", record)  # ops queues through it
    monkeypatch.setattr("stacks.admin.reconcile.enqueue", record)
    return calls


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def age_requests(minutes: float) -> None:
    """Move every recorded request back in time (as if asked for `minutes` ago)."""
    AuditEvent.objects.filter(action=AuditAction.OPERATION).update(
        occurred_at=timezone.now() - timedelta(minutes=minutes)
    )


def record_health_run(*, began_seconds_ago: float) -> None:
    """A finished run of the checks, as ops.health.record stores it: one checked_at (its end)
    for all results, each with its latency."""
    now = timezone.now()
    for name, latency in (("coolify_api", 40), ("pocketbase", int(began_seconds_ago * 1000))):
        HealthCheckResult.objects.create(
            check_name=name, status=CheckStatus.OK, latency_ms=latency, checked_at=now
        )


# --- health checks ----------------------------------------------------------------------------


def test_a_second_health_run_while_one_is_queued_is_refused(as_user, support, queued):
    client = as_user(support)

    first = client.post(RUN_HEALTH, follow=True)
    second = client.post(RUN_HEALTH, follow=True)

    assert queued == [("ops.tasks.run_health_checks_task",)]
    assert messages_of(first) == [
        "Health checks queued; the dashboard updates by itself as their results arrive."
    ]
    [refusal] = messages_of(second)
    match = ALREADY.match(refusal)
    assert match and match["label"] == "Health checks" and match["by"] == "support", refusal
    assert second.redirect_chain == [(reverse("admin:ops_dashboard"), 302)]
    request = AuditEvent.objects.get(action=AuditAction.OPERATION)
    assert (request.actor, request.message, request.changes) == (
        support,
        "Health checks requested",
        {"job": "health_checks"},
    )


def test_the_refusal_names_whoever_asked_first(support, operator):
    health.request_health_run(support, enqueue=lambda *a: None)

    with pytest.raises(AlreadyQueued) as already:
        health.request_health_run(operator, enqueue=lambda *a: None)

    assert already.value.requested_by == "support"
    assert already.value.requested_at == AuditEvent.objects.get().occurred_at
    assert "one is already queued (requested by support at " in already.value.message


def test_a_run_that_began_after_the_request_ends_it(as_user, support, queued):
    client = as_user(support)
    client.post(RUN_HEALTH, follow=True)
    age_requests(minutes=1)
    record_health_run(began_seconds_ago=2)  # began after the request a minute ago

    again = client.post(RUN_HEALTH, follow=True)

    assert messages_of(again) == [
        "Health checks queued; the dashboard updates by itself as their results arrive."
    ]
    assert len(queued) == 2


def test_a_scheduled_run_under_way_when_asked_does_not_end_the_request(support):
    """It began before the request (its slowest check took 90 s): it did not answer it."""
    health.request_health_run(support, enqueue=lambda *a: None)
    age_requests(minutes=1)
    record_health_run(began_seconds_ago=90)

    with pytest.raises(AlreadyQueued):
        health.request_health_run(support, enqueue=lambda *a: None)


def test_a_request_older_than_the_bound_no_longer_blocks(support):
    """Its worker died: after HEALTH_REQUEST_STALE_AFTER another run may be asked for."""
    calls: list[tuple] = []
    health.request_health_run(support, enqueue=lambda *a: calls.append(a))
    age_requests(minutes=health.HEALTH_REQUEST_STALE_AFTER.total_seconds() / 60 + 1)

    health.request_health_run(support, enqueue=lambda *a: calls.append(a))

    assert len(calls) == 2


def test_nothing_is_queued_or_recorded_without_the_permission(as_user, viewer, queued):
    assert as_user(viewer).post(RUN_HEALTH).status_code == 403
    assert queued == [] and not AuditEvent.objects.filter(action=AuditAction.OPERATION).exists()


# --- reconcile --------------------------------------------------------------------------------


def test_a_second_reconcile_while_one_is_queued_is_refused(as_user, operator, queued):
    client = as_user(operator)

    first = client.post(RUN_RECONCILE, follow=True)
    second = client.post(RUN_RECONCILE, follow=True)

    assert queued == [("stacks.tasks.reconcile_task", operator.pk)]
    assert messages_of(first) == ["Reconcile queued; reload in a moment for the new report."]
    [refusal] = messages_of(second)
    match = ALREADY.match(refusal)
    assert match and match["label"] == "Reconcile" and match["by"] == "operator", refusal
    assert AuditEvent.objects.get(action=AuditAction.OPERATION).changes == {"job": "reconcile"}


def test_a_reconcile_still_running_keeps_the_request_pending(operator):
    reconcile.request_reconcile(operator, enqueue=lambda *a: None)
    ReconcileRun.objects.create(requested_by_repr="operator")  # began, not finished

    with pytest.raises(AlreadyQueued):
        reconcile.request_reconcile(operator, enqueue=lambda *a: None)


def test_a_reconcile_finished_after_the_request_ends_it(operator):
    calls: list[tuple] = []
    reconcile.request_reconcile(operator, enqueue=lambda *a: calls.append(a))
    ReconcileRun.objects.create(requested_by_repr="operator", finished_at=timezone.now())

    reconcile.request_reconcile(operator, enqueue=lambda *a: calls.append(a))

    assert calls == [("stacks.tasks.reconcile_task", operator.pk)] * 2


def test_a_reconcile_that_began_before_the_request_does_not_end_it(operator):
    earlier = ReconcileRun.objects.create(requested_by_repr="schedule")
    reconcile.request_reconcile(operator, enqueue=lambda *a: None)
    ReconcileRun.objects.filter(pk=earlier.pk).update(finished_at=timezone.now())

    with pytest.raises(AlreadyQueued):
        reconcile.request_reconcile(operator, enqueue=lambda *a: None)


# --- a checklist run's automatic checks -------------------------------------------------------


@pytest.fixture
def runbook():
    if not Procedure.objects.filter(slug=DAILY_HEALTH_CHECK, active=True).exists():
        importlib.import_module("ops.migrations.0003_seed_runbook").seed(django_apps, None)


def daily_run(runbook) -> ChecklistRun:
    from ops.checklists import start_run

    return start_run(Procedure.objects.get(slug=DAILY_HEALTH_CHECK, active=True), actor=None)


def probe_url(run: ChecklistRun) -> str:
    return reverse("admin:ops_checklistrun_probe", args=[run.pk])


def test_a_click_on_run_automatic_checks_while_one_is_queued_is_refused(
    runbook, as_user, support, queued
):
    """Starting a run queues its checks as a request like any other: "run again" is refused
    while they are queued, and accepted once a worker has run them."""
    client = as_user(support)
    client.post(reverse("admin:ops_procedure_start", args=[procedure_pk()]))
    run = ChecklistRun.objects.get()

    refused = client.post(probe_url(run), follow=True)

    assert queued == [("ops.tasks.run_checklist_probes_task", run.pk)]  # the start's, only
    [refusal] = messages_of(refused)
    match = ALREADY.match(refusal)
    assert match and match["label"] == "Automatic checks" and match["by"] == "support", refusal

    tasks.run_checklist_probes_task(run.pk)  # the worker takes the start's task
    again = client.post(probe_url(run), follow=True)
    assert messages_of(again) == [
        "Automatic checks queued; their results appear here by themselves."
    ]
    assert len(queued) == 2


def procedure_pk() -> int:
    return Procedure.objects.get(slug=DAILY_HEALTH_CHECK, active=True).pk


def test_checks_asked_for_twice_are_queued_once_until_they_have_run(
    runbook, as_user, support, queued, monkeypatch
):
    run = daily_run(runbook)
    client = as_user(support)

    client.post(probe_url(run), follow=True)
    client.post(probe_url(run), follow=True)
    assert queued == [("ops.tasks.run_checklist_probes_task", run.pk)]

    monkeypatch.setattr("ops.checklists.run_probes", lambda r: 3)
    assert tasks.run_checklist_probes_task(run.pk) == 3  # the worker runs them

    again = client.post(probe_url(run), follow=True)
    assert messages_of(again) == [
        "Automatic checks queued; their results appear here by themselves."
    ]
    assert len(queued) == 2
    ran = AuditEvent.objects.get(action=AuditAction.OPERATION_RESULT)
    assert (ran.message, ran.target_id, ran.actor_repr) == (
        "Automatic checks ran (3 checked)",
        str(run.pk),
        "system",
    )


def test_a_probe_run_that_fails_ends_the_request_too(runbook, support, monkeypatch):
    run = daily_run(runbook)
    probes.request_probes(run, actor=support, enqueue=lambda *a: None)

    def broken(_run):
        raise RuntimeError("boom")

    monkeypatch.setattr("ops.checklists.run_probes", broken)
    with pytest.raises(RuntimeError):
        tasks.run_checklist_probes_task(run.pk)

    probes.request_probes(run, actor=support, enqueue=lambda *a: None)  # not refused
    assert AuditEvent.objects.filter(message="Automatic checks stopped by an error").exists()


def test_each_checklist_run_has_its_own_queue(runbook, support):
    first, second = daily_run(runbook), daily_run(runbook)
    calls: list[tuple] = []

    probes.request_probes(first, actor=support, enqueue=lambda *a: calls.append(a))
    probes.request_probes(second, actor=support, enqueue=lambda *a: calls.append(a))

    assert calls == [
        ("ops.tasks.run_checklist_probes_task", first.pk),
        ("ops.tasks.run_checklist_probes_task", second.pk),
    ]
    with pytest.raises(AlreadyQueued):
        probes.request_probes(first, actor=support, enqueue=lambda *a: calls.append(a))


def test_a_refused_request_queues_nothing_and_records_nothing(support):
    health.request_health_run(support, enqueue=lambda *a: None)
    calls: list[tuple] = []

    with pytest.raises(AlreadyQueued):
        health.request_health_run(support, enqueue=lambda *a: calls.append(a))

    assert calls == [] and AuditEvent.objects.count() == 1


# --- two requests at the same moment (PostgreSQL: SQLite serializes its transactions) -----------


def ask_at_once(*actors) -> tuple[list[str], list[object]]:
    """Each actor asks for a health run in its own thread, at the same moment; what was
    queued, and what each was answered."""
    queued: list[str] = []
    answers: list[object] = []
    barrier = threading.Barrier(len(actors))

    def ask(actor) -> None:
        try:
            barrier.wait(timeout=10)
            answers.append(health.request_health_run(actor, enqueue=queued.append))
        except AlreadyQueued as already:
            answers.append(already)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(actor,)) for actor in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return queued, answers


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite runs one writing transaction at a time"
)
@pytest.mark.django_db(transaction=True)
def test_two_requests_at_the_same_moment_queue_one_run(support, operator):
    for round_ in range(20):
        AuditEvent.objects.filter(action=AuditAction.OPERATION).delete()

        queued, answers = ask_at_once(support, operator)

        assert queued == ["ops.tasks.run_health_checks_task"], round_
        assert sorted(type(a).__name__ for a in answers) == ["AlreadyQueued", "AuditEvent"]
