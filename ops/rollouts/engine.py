"""The operator's rollout actions: create (from a previewed plan), start, pause, resume, cancel,
roll a failed wave back; the engine's own halt. Each status change is a conditional UPDATE
(two clicks or a click racing the schedule change it once) and each is audited with the
rollout as target. The waves themselves move in ops.rollouts.gate.advance (every minute and
after each of the rollout's operations ends)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ops.models import (
    Rollout,
    RolloutAction,
    RolloutStack,
    RolloutStatus,
    RolloutWave,
    WaveStatus,
)
from ops.models.rollouts import CHANGED_STATES, FINISHED_ROLLOUT_STATES
from ops.rollouts.gate import advance as advance
from ops.rollouts.plan import RolloutPlan
from ops.rollouts.transitions import halt as halt
from ops.rollouts.transitions import hold_of
from ops.rollouts.transitions import record as _record
from ops.rollouts.transitions import transition as _transition
from stacks.choices import OperationKind
from stacks.models import Operation, Stack
from stacks.models.template_release import TemplateRelease
from stacks.services.operations import OperationRefused, request_operation

CHUNK = 1000  # rows per bulk insert / id lookup (10,000-stack rollouts)
# A rolled-back stack is one whose redeploy started: it may run the new version or a half-done
# one. Stacks never requested (pending) are untouched.


def create(plan: RolloutPlan, *, actor: Any) -> Rollout:
    """A DRAFT rollout of the previewed plan: its waves, and its stacks in order, each with the
    version it runs now (what a rollback brings it back to). Refused (ValidationError, field
    "template") while another rollout of the template is unfinished."""
    with transaction.atomic():
        busy = (
            Rollout.objects.select_for_update()
            .filter(template_name=plan.template_name)
            .exclude(status__in=FINISHED_ROLLOUT_STATES)
            .first()
        )
        if busy is not None:
            raise ValidationError(
                {
                    "template": f"Rollout {busy} is {busy.get_status_display().lower()}: "
                    "finish or cancel it before starting another of this template."
                }
            )
        rollout = Rollout.objects.create(
            template_name=plan.template_name,
            to_version=plan.to_version,
            from_versions=plan.from_versions,
            wave_sizes=plan.wave_sizes,
            soak_minutes=plan.soak_minutes,
            require_validation=plan.require_validation,
            filters=plan.filters,
            created_by=actor if hasattr(actor, "pk") else None,
        )
        # The version is the rollout's to deploy: a plain redeploy meanwhile keeps a stack's own
        # (stacks.provisioning.deploy_steps.kept_version); completing the rollout lets it go.
        TemplateRelease.objects.filter(
            template_name=plan.template_name, version=plan.to_version
        ).update(held_by=hold_of(rollout))
        waves = RolloutWave.objects.bulk_create(
            RolloutWave(rollout=rollout, number=w.number, ring=w.ring, size=w.size)
            for w in plan.waves
        )
        versions = _versions(plan.stack_ids)
        RolloutStack.objects.bulk_create(
            (
                RolloutStack(rollout=rollout, wave=wave, stack_id=pk, from_version=versions[pk])
                for wave, planned in zip(waves, plan.waves, strict=True)
                for pk in planned.stack_ids
                if pk in versions
            ),
            batch_size=CHUNK,
        )
        _record(
            rollout,
            RolloutAction.CREATE,
            actor,
            f"Created rollout of {plan.template_name} {plan.to_version}: {plan.total} stacks "
            f"in {len(plan.waves)} waves ({', '.join(plan.wave_sizes)} per ring)",
            {"filters": plan.filters, "stacks": plan.total, "waves": len(plan.waves)},
        )
    return rollout


def _versions(stack_ids: list[int]) -> dict[int, str]:
    """Each live stack's version now (a stack deleted since the preview is left out)."""
    found: dict[int, str] = {}
    for start in range(0, len(stack_ids), CHUNK):
        rows = Stack.objects.filter(
            pk__in=stack_ids[start : start + CHUNK], deleted_at__isnull=True
        ).values_list("pk", "template_version")
        found.update(rows)
    return found


def start(rollout: Rollout, *, actor: Any) -> Rollout:
    """DRAFT → RUNNING; its first wave is requested at once (after the commit)."""
    _transition(rollout, RolloutAction.START, RolloutStatus.RUNNING, actor, started=True)
    advance(rollout.pk)
    rollout.refresh_from_db()
    return rollout


def pause(rollout: Rollout, *, actor: Any) -> Rollout:
    """RUNNING → PAUSED: nothing more is requested; redeploys in flight finish and are judged."""
    return _transition(rollout, RolloutAction.PAUSE, RolloutStatus.PAUSED, actor)


def resume(rollout: Rollout, *, actor: Any) -> Rollout:
    """PAUSED, or HALTED once its failed wave is rolled back → RUNNING: the waves go on where
    they stopped (the rolled-back wave's stacks stay on their old version)."""
    if not rollout.can(RolloutAction.RESUME):
        rollout.refresh_from_db()
        if rollout.status == RolloutStatus.HALTED:
            raise ValidationError(
                f"Rollout {rollout} is halted on a failed wave: roll that wave back first."
            )
    _transition(rollout, RolloutAction.RESUME, RolloutStatus.RUNNING, actor)
    advance(rollout.pk)
    rollout.refresh_from_db()
    return rollout


def cancel(rollout: Rollout, *, actor: Any) -> Rollout:
    """→ CANCELLED for good: nothing more is requested; stacks on the new version stay on it."""
    return _transition(rollout, RolloutAction.CANCEL, RolloutStatus.CANCELLED, actor, ends=True)


def rollback(wave: RolloutWave, *, actor: Any) -> list[Operation]:
    """Redeploy each stack of a failed wave whose redeploy started with the version it ran
    before (its from_version, as background operations); the wave is ROLLED_BACK once they all
    succeeded (gate.advance), at once when none started. Refused while a stack of the wave
    still deploys or a rollback of it is in flight."""
    rollout = wave.rollout
    if not wave.can_roll_back():
        raise ValidationError(
            f"Wave {wave.number} of rollout {rollout} cannot be rolled back now: only a failed "
            "wave whose redeploys and earlier rollbacks have all finished can."
        )
    operations: list[Operation] = []
    with transaction.atomic():
        changed = wave.stacks.filter(status__in=CHANGED_STATES, operation__isnull=False)
        for entry in changed.select_related("stack__tenant"):
            operations += _roll_back_stack(entry, rollout, actor)
        if not operations:
            RolloutWave.objects.filter(pk=wave.pk, status=WaveStatus.FAILED).update(
                status=WaveStatus.ROLLED_BACK, finished_at=timezone.now()
            )
        _record(
            rollout,
            RolloutAction.ROLLBACK,
            actor,
            f"Rolling wave {wave.number} back: {len(operations)} redeploy(s) to the previous "
            "version requested",
            {"wave": wave.number, "operations": [op.pk for op in operations]},
        )
    wave.refresh_from_db()
    return operations


def _roll_back_stack(entry: RolloutStack, rollout: Rollout, actor: Any) -> list[Operation]:
    parameters = {
        "template_version": entry.from_version,
        "rollout_id": rollout.pk,
        "rollback": True,
    }
    try:
        operation = request_operation(
            entry.stack, OperationKind.REDEPLOY, actor=actor, parameters=parameters, background=True
        )
    except OperationRefused as refused:
        RolloutStack.objects.filter(pk=entry.pk).update(error=f"rollback refused: {refused}")
        return []
    RolloutStack.objects.filter(pk=entry.pk).update(rollback_operation=operation)
    return [operation]
