"""Advancing a rollout (every minute by the schedule, and after each of its operations ends):
judge the redeploys that finished, gate the running wave, request more of its stacks, start
the next wave or complete the rollout. Idempotent: what a call does depends on the rows only,
and every step is a conditional UPDATE (a stack is requested once, a wave passes once), under
the rollout's row lock.

A wave's stack passes when its redeploy succeeded, it runs the target version and is running,
its validation checklist has no failed automatic check and every probe ran (when the rollout
requires validation; probes not run within ROLLOUT_VALIDATION_TIMEOUT_MINUTES fail the stack),
and `soak_minutes` have passed since the wave's last redeploy ended.
A stack that fails any of these fails its wave, and the rollout halts: nothing more is
requested, redeploys in flight finish and are judged (ops.rollouts.engine.rollback next)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ops.models import (
    Rollout,
    RolloutAction,
    RolloutStack,
    RolloutStackStatus,
    RolloutStatus,
    RolloutWave,
    WaveStatus,
)
from ops.models.rollouts import ACTIVE_STACK_STATES, CHANGED_STATES
from ops.rollouts import validation
from ops.rollouts.transitions import halt, transition
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation
from stacks.services.operations import OperationRefused, request_operation

# How many of a wave's redeploys are queued ahead of the background dispatcher: enough to
# keep its places busy, few enough that a pause or a halt leaves little already queued.
AHEAD_PER_PLACE = 2
FINISHED_OPS = (OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELLED)
BUSY = "operation_in_flight"  # the stack is busy with another operation: asked again later


def advance(rollout_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Move one rollout on as far as its rows allow now; returns what changed (for logs and
    tests). A no-op for drafts and finished rollouts with nothing in flight."""
    now = now or timezone.now()
    done: dict[str, Any] = {"judged": 0, "requested": 0}
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().filter(pk=rollout_id).first()
        if rollout is None or rollout.status == RolloutStatus.DRAFT:
            return done
        done["judged"] = _judge_redeploys(rollout, now) + _judge_rollbacks(rollout, now)
        for wave in rollout.waves.filter(status=WaveStatus.RUNNING).order_by("number"):
            if _fail_if_failed(rollout, wave, now):
                done["halted"] = wave.number
        rollout.refresh_from_db()
        if rollout.status != RolloutStatus.RUNNING:
            return done
        wave = rollout.waves.filter(status=WaveStatus.RUNNING).order_by("number").first()
        if wave is not None and _passes(rollout, wave, now):
            RolloutWave.objects.filter(pk=wave.pk, status=WaveStatus.RUNNING).update(
                status=WaveStatus.PASSED, finished_at=now
            )
            done["passed"] = wave.number
            wave = None
        if wave is None:
            wave = _start_next_wave(rollout, now)
            if wave is None:
                rolled_back = rollout.waves.filter(status=WaveStatus.ROLLED_BACK).count()
                detail = (
                    f"every other wave passed; {rolled_back} rolled back (its stacks stay on "
                    "their previous version)"
                    if rolled_back
                    else "every wave passed"
                )
                transition(rollout, RolloutAction.COMPLETE, RolloutStatus.COMPLETED, None,
                           detail=detail, ends=True)  # fmt: skip
                done["completed"] = True
                return done
            done["started"] = wave.number
        rollout.refresh_from_db(fields=["status"])
        if rollout.status == RolloutStatus.RUNNING:  # not halted by the soak's health check
            done["requested"] = _request_more(rollout, wave)
    return done


def _judge_redeploys(rollout: Rollout, now: datetime) -> int:
    """DEPLOYING stacks whose redeploy ended → VERIFYING or FAILED; VERIFYING ones that stopped
    running or failed validation → FAILED, and those that pass the stack's gates → PASSED
    (the wave's soak is judged in _passes)."""
    judged = 0
    entries = (
        RolloutStack.objects.filter(rollout=rollout, status__in=ACTIVE_STACK_STATES)
        .select_related("operation", "stack")
        .order_by("pk")
    )
    for entry in entries:
        op, stack = entry.operation, entry.stack
        if op is None or op.status not in FINISHED_OPS:
            continue
        failure = ""
        if op.status != OperationStatus.SUCCEEDED:
            failure = f"redeploy {op.get_status_display().lower()}: {op.error}".strip(": ")
        elif stack.template_version != rollout.to_version:
            failure = f"redeployed, but runs {stack.template_version or '—'}"
        elif stack.status != StackStatus.RUNNING:
            failure = f"the stack is {stack.get_status_display().lower()} after its redeploy"
        status = RolloutStackStatus.VERIFYING
        if not failure and rollout.require_validation:
            verdict, why = validation.verdict(op)
            if verdict == validation.FAILED:
                failure = why
            elif verdict == validation.WAITING:
                failure = _wait_for_validation(op, why, now)
            if verdict == validation.PASSED:
                status = RolloutStackStatus.PASSED
        elif not failure:
            status = RolloutStackStatus.PASSED
        if failure:
            status = RolloutStackStatus.FAILED
        if status == entry.status:
            continue
        changed = RolloutStack.objects.filter(pk=entry.pk, status=entry.status).update(
            status=status,
            error=failure[:2000],
            finished_at=op.finished_at or now if status != RolloutStackStatus.VERIFYING else None,
        )
        judged += changed
    return judged


def _wait_for_validation(op: Operation, why: str, now: datetime) -> str:
    """A redeploy whose validation probes have not all run: its run opened and probed when no
    hook did; the probes queued once more half-way through the timeout (the first ones may be
    lost); past the timeout, the failure that fails the stack ("" while it may still wait)."""
    run = validation.run_for(op)
    if run is None:
        run = validation.open_run(op)  # no hook opened it
        validation.queue_probes(run)
    started = validation.began(op, run)
    limit = validation.timeout()
    if now >= started + limit:
        return validation.timed_out(run, why)
    if now >= started + limit / 2:
        validation.requeue_probes(run, since=started + limit / 2)
    return ""


def _judge_rollbacks(rollout: Rollout, now: datetime) -> int:
    """Finished rollbacks: succeeded → ROLLED_BACK; failed → the error (the wave can be rolled
    back again). A failed wave whose changed stacks are all rolled back is ROLLED_BACK."""
    judged = 0
    entries = (
        RolloutStack.objects.filter(rollout=rollout, rollback_operation__isnull=False)
        .exclude(status=RolloutStackStatus.ROLLED_BACK)
        .select_related("rollback_operation")
    )
    for entry in entries:
        op = entry.rollback_operation
        if op.status == OperationStatus.SUCCEEDED:
            judged += (
                RolloutStack.objects.filter(pk=entry.pk)
                .exclude(status=RolloutStackStatus.ROLLED_BACK)
                .update(status=RolloutStackStatus.ROLLED_BACK, finished_at=op.finished_at or now)
            )
        elif op.status in FINISHED_OPS and not entry.error.startswith("rollback"):
            RolloutStack.objects.filter(pk=entry.pk).update(
                error=f"rollback {op.get_status_display().lower()}: {op.error}"[:2000]
            )
    for wave in rollout.waves.filter(status=WaveStatus.FAILED):
        stacks = wave.stacks.all()
        if not stacks.filter(rollback_operation__isnull=False).exists():
            continue  # not rolled back yet
        open_rollbacks = stacks.filter(
            status__in=(*CHANGED_STATES, RolloutStackStatus.DEPLOYING), operation__isnull=False
        )
        if not open_rollbacks.exists():
            RolloutWave.objects.filter(pk=wave.pk, status=WaveStatus.FAILED).update(
                status=WaveStatus.ROLLED_BACK, finished_at=now
            )
    return judged


def _fail_if_failed(rollout: Rollout, wave: RolloutWave, now: datetime) -> bool:
    """A running wave with a failed stack fails, and halts the rollout (once)."""
    failed = wave.stacks.filter(status=RolloutStackStatus.FAILED).select_related("stack__tenant")
    first = failed.first()
    if first is None:
        return False
    if not RolloutWave.objects.filter(pk=wave.pk, status=WaveStatus.RUNNING).update(
        status=WaveStatus.FAILED, finished_at=now
    ):
        return False
    count = failed.count()
    reason = f"wave {wave.number}: {count} stack(s) failed; first {first.stack}: {first.error}"
    halt(rollout, reason=reason[:2000])
    return True


def _passes(rollout: Rollout, wave: RolloutWave, now: datetime) -> bool:
    """Every stack of the wave passed its own gates, and the soak time has run since the
    wave's last redeploy ended."""
    if wave.stacks.exclude(status=RolloutStackStatus.PASSED).exists():
        return False
    # Healthy through the soak: a stack that stopped running since it passed fails the wave.
    stopped = wave.stacks.exclude(stack__status=StackStatus.RUNNING)
    if stopped.exists():
        stopped.update(
            status=RolloutStackStatus.FAILED, error="stopped running during the soak time"
        )
        _fail_if_failed(rollout, wave, now)
        return False
    last = wave.stacks.aggregate(last=Max("operation__finished_at"))["last"]
    return last is None or now >= last + timedelta(minutes=rollout.soak_minutes)


def _start_next_wave(rollout: Rollout, now: datetime) -> RolloutWave | None:
    wave = rollout.waves.filter(status=WaveStatus.PENDING).order_by("number").first()
    if wave is None:
        return None
    RolloutWave.objects.filter(pk=wave.pk, status=WaveStatus.PENDING).update(
        status=WaveStatus.RUNNING, started_at=now
    )
    wave.refresh_from_db()
    return wave


def _request_more(rollout: Rollout, wave: RolloutWave) -> int:
    """Request the next pending stacks of the wave as background redeploys, keeping about
    AHEAD_PER_PLACE x BACKGROUND_OPERATIONS_IN_FLIGHT of them queued or running."""
    ahead = AHEAD_PER_PLACE * max(1, int(getattr(settings, "BACKGROUND_OPERATIONS_IN_FLIGHT", 8)))
    want = ahead - wave.stacks.filter(status=RolloutStackStatus.DEPLOYING).count()
    if want <= 0:
        return 0
    requested = 0
    pending = wave.stacks.filter(status=RolloutStackStatus.PENDING).select_related("stack__tenant")
    for entry in pending.order_by("pk")[:want]:
        requested += _request_one(rollout, entry)
    return requested


def _request_one(rollout: Rollout, entry: RolloutStack) -> int:
    stack = entry.stack
    if stack.template_version == rollout.to_version and stack.status == StackStatus.RUNNING:
        # Moved to the target since the plan (by hand, or another rollout): nothing to do.
        RolloutStack.objects.filter(pk=entry.pk, status=RolloutStackStatus.PENDING).update(
            status=RolloutStackStatus.PASSED, error="already on the target version"
        )
        return 0
    parameters = {"template_version": rollout.to_version, "rollout_id": rollout.pk}
    with transaction.atomic():
        claimed = RolloutStack.objects.filter(
            pk=entry.pk, status=RolloutStackStatus.PENDING
        ).update(status=RolloutStackStatus.DEPLOYING)
        if not claimed:
            return 0
        try:
            operation = request_operation(
                stack,
                OperationKind.REDEPLOY,
                actor=f"rollout:{rollout.pk}",
                parameters=parameters,
                background=True,
            )
        except OperationRefused as refused:
            if refused.code == BUSY:  # someone else's operation: ask again on the next advance
                RolloutStack.objects.filter(pk=entry.pk).update(status=RolloutStackStatus.PENDING)
                return 0
            RolloutStack.objects.filter(pk=entry.pk).update(
                status=RolloutStackStatus.FAILED, error=f"not redeployed: {refused.message}"
            )
            return 0
        RolloutStack.objects.filter(pk=entry.pk).update(operation=operation)
    return 1
