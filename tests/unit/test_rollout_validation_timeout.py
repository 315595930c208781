"""A rollout stack waiting for its validation probes (ops/rollouts/gate.py, validation.py): lost
probes are queued once more half-way through ROLLOUT_VALIDATION_TIMEOUT_MINUTES, even while the
lost request still holds "one queued at a time", and at the timeout the stack fails and halts
the rollout. Time moves by putting the redeploy's end (and the run's opening) in the past."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cfadmin import jobs
from cfadmin.models import AuditEvent
from ops.models import (
    ItemState,
    Rollout,
    RolloutStack,
    RolloutStackStatus,
    RolloutStatus,
    RolloutWave,
    WaveStatus,
)
from ops.probes import PROBES_JOB
from ops.rollouts import gate, validation
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.compose import load_manifest
from stacks.models import Operation
from tenants.models import RolloutRing

TEMPLATE = "openclaw-agent"
PROBES_TASK = "ops.tasks.run_checklist_probes_task"

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    """Jobs queued (cfadmin.jobs.enqueue), recorded instead of sent: no probe runs here."""
    calls: list[tuple] = []
    monkeypatch.setattr(jobs, "enqueue", lambda func, *args, **options: calls.append((func, args)))
    return calls


@pytest.fixture
def verifying(make_stack, operator):
    """A running rollout whose one stack redeployed `ended_ago` and waits for validation: its
    run opened at the redeploy's end (by the hook) and its probes requested then, never run."""

    def make(ended_ago: timedelta) -> RolloutStack:
        version = load_manifest(TEMPLATE).version
        rollout = Rollout.objects.create(
            template_name=TEMPLATE,
            to_version=version,
            from_versions=["0ld-version"],
            status=RolloutStatus.RUNNING,
            wave_sizes=["rest"],
            soak_minutes=0,
            require_validation=True,
            filters={},
            created_by=operator,
        )
        wave = RolloutWave.objects.create(
            rollout=rollout,
            number=1,
            ring=RolloutRing.STANDARD,
            status=WaveStatus.RUNNING,
            started_at=timezone.now() - ended_ago - timedelta(minutes=2),
        )
        stack = make_stack(
            f"acme-{rollout.pk}", status=StackStatus.RUNNING, template_version=version
        )
        ended = timezone.now() - ended_ago
        operation = Operation.objects.create(
            stack=stack,
            kind=OperationKind.REDEPLOY,
            status=OperationStatus.SUCCEEDED,
            requested_by_repr=f"rollout:{rollout.pk}",
            parameters={"template_version": version, "rollout_id": rollout.pk},
            finished_at=ended,
        )
        run = validation.open_run(operation)
        type(run).objects.filter(pk=run.pk).update(started_at=ended)
        validation.queue_probes(run)  # the task that was lost
        AuditEvent.objects.filter(changes__job=PROBES_JOB, target_id=str(run.pk)).update(
            occurred_at=ended + timedelta(seconds=30)
        )
        return RolloutStack.objects.create(
            rollout=rollout,
            wave=wave,
            stack=stack,
            from_version="0ld-version",
            status=RolloutStackStatus.VERIFYING,
            operation=operation,
        )

    return make


def requeued(queued: list[tuple], entry: RolloutStack) -> int:
    run = validation.run_for(entry.operation)
    return sum(1 for func, args in queued if func == PROBES_TASK and args == (run.pk,))


def test_early_on_the_stack_waits_and_nothing_is_queued_again(verifying, queued):
    entry = verifying(timedelta(minutes=5))
    queued.clear()

    gate.advance(entry.rollout_id)

    entry.refresh_from_db()
    assert entry.status == RolloutStackStatus.VERIFYING and entry.error == ""
    assert requeued(queued, entry) == 0


@pytest.mark.parametrize(("timeout", "ended_ago"), [(30, 16), (12, 7)])
def test_half_way_lost_probes_are_queued_once_more(verifying, queued, settings, timeout, ended_ago):
    settings.ROLLOUT_VALIDATION_TIMEOUT_MINUTES = timeout
    entry = verifying(timedelta(minutes=ended_ago))
    queued.clear()

    gate.advance(entry.rollout_id)

    assert requeued(queued, entry) == 1
    entry.refresh_from_db()
    assert entry.status == RolloutStackStatus.VERIFYING
    gate.advance(entry.rollout_id)
    gate.advance(entry.rollout_id)
    assert requeued(queued, entry) == 1  # once


def test_the_lost_request_still_held_does_not_stop_the_requeue(verifying, queued, settings):
    settings.ROLLOUT_VALIDATION_TIMEOUT_MINUTES = 12  # half-way (6 min) before the mark is stale
    entry = verifying(timedelta(minutes=7))
    queued.clear()
    run = validation.run_for(entry.operation)
    validation.queue_probes(run)  # "one queued at a time": the lost one blocks a plain queue
    assert requeued(queued, entry) == 0

    gate.advance(entry.rollout_id)

    assert requeued(queued, entry) == 1


def test_at_the_timeout_the_stack_fails_naming_the_rule_and_the_rollout_halts(verifying, queued):
    entry = verifying(timedelta(minutes=31))
    run = validation.run_for(entry.operation)
    automatic = run.items.exclude(step__probe="").count()
    assert automatic > 0

    gate.advance(entry.rollout_id)

    entry.refresh_from_db()
    assert entry.status == RolloutStackStatus.FAILED
    assert entry.error == (
        f"validation did not finish within 30 min (checklist run #{run.pk}: "
        f"{automatic} automatic check(s) not run yet)"
    )
    assert entry.finished_at == entry.operation.finished_at
    assert entry.wave.status == WaveStatus.FAILED
    rollout = Rollout.objects.get(pk=entry.rollout_id)
    assert rollout.status == RolloutStatus.HALTED
    assert "validation did not finish within 30 min" in rollout.status_detail


def test_the_timeout_is_a_setting(verifying, queued, settings):
    settings.ROLLOUT_VALIDATION_TIMEOUT_MINUTES = 10
    entry = verifying(timedelta(minutes=11))

    gate.advance(entry.rollout_id)

    entry.refresh_from_db()
    assert entry.status == RolloutStackStatus.FAILED
    assert entry.error.startswith("validation did not finish within 10 min (checklist run #")


def test_probes_that_ran_in_time_pass_and_a_run_opened_late_gets_its_time(verifying, queued):
    entry = verifying(timedelta(minutes=40))
    run = validation.run_for(entry.operation)
    run.items.exclude(step__probe="").update(state=ItemState.PASSED)

    gate.advance(entry.rollout_id)

    entry.refresh_from_db()
    assert entry.status == RolloutStackStatus.PASSED

    # The schedule was down: the run opened just now, long after the redeploy ended.
    late = verifying(timedelta(minutes=40))
    type(run).objects.filter(operation=late.operation).update(started_at=timezone.now())

    gate.advance(late.rollout_id)

    late.refresh_from_db()
    assert late.status == RolloutStackStatus.VERIFYING and late.error == ""
