"""A rollout's status changes: one conditional UPDATE from the statuses the action allows
(two clicks, or a click racing the schedule, change it once), audited with the rollout as
target."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cfadmin import audit
from cfadmin.models import AuditAction
from ops.models import Rollout, RolloutAction, RolloutStatus
from ops.models.rollouts import ACTION_FROM, RolloutStack, RolloutStackStatus
from stacks.choices import OperationStatus
from stacks.models.template_release import TemplateRelease
from stacks.services.operations import OperationRefused, cancel_operation

DONE = {
    RolloutAction.START: "started",
    RolloutAction.PAUSE: "paused",
    RolloutAction.RESUME: "resumed",
    RolloutAction.CANCEL: "cancelled",
    RolloutAction.HALT: "halted",
    RolloutAction.COMPLETE: "completed",
}


def transition(
    rollout: Rollout,
    action: str,
    to: str,
    actor: Any,
    *,
    detail: str = "",
    started: bool = False,
    ends: bool = False,
) -> Rollout:
    """Move the rollout to `to`; ValidationError when its status (changed by someone else
    first, perhaps) does not allow the action."""
    now = timezone.now()
    changes: dict[str, Any] = {"status": to, "status_detail": detail, "updated_at": now}
    if started:
        changes["started_at"] = now
    if ends:
        changes["finished_at"] = now
    with transaction.atomic():
        before = Rollout.objects.filter(pk=rollout.pk).values_list("status", flat=True).first()
        moved = Rollout.objects.filter(pk=rollout.pk, status__in=ACTION_FROM[action]).update(
            **changes
        )
        if not moved:
            label = RolloutStatus(before).label.lower() if before else "gone"
            raise ValidationError(f"Rollout {rollout} is {label}: it cannot be {DONE[action]} now.")
        message = f"Rollout {rollout} {DONE[action]}" + (f": {detail}" if detail else "")
        record(rollout, action, actor, message, {"status": [before, to]})
        if action in STOPPING:
            withdraw_undispatched(rollout, actor, f"rollout {DONE[action]}")
        if action == RolloutAction.COMPLETE:  # its version is everyone's to deploy now
            TemplateRelease.objects.filter(
                template_name=rollout.template_name, held_by=hold_of(rollout)
            ).update(held_by="")
    rollout.refresh_from_db()
    return rollout


# Actions after which no more of the rollout's redeploys should reach a worker.
STOPPING = (RolloutAction.HALT, RolloutAction.PAUSE, RolloutAction.CANCEL)


def hold_of(rollout: Rollout) -> str:
    """What a rollout writes on the version it owns (TemplateRelease.held_by)."""
    return f"rollout #{rollout.pk}"


def withdraw_undispatched(rollout: Rollout, actor: Any, why: str) -> int:
    """Cancel the rollout's redeploys still waiting for the dispatcher (requested ahead of it)
    and put their stacks back to pending: after a halt, not one more customer gets the version
    that failed; a resumed rollout requests them again. Those a worker has are left to finish
    (and be judged). Returns how many were withdrawn."""
    waiting = RolloutStack.objects.filter(
        rollout=rollout,
        status=RolloutStackStatus.DEPLOYING,
        operation__status=OperationStatus.QUEUED,
        operation__background=True,
        operation__dispatched_at__isnull=True,
    ).select_related("operation__stack__tenant")
    withdrawn = 0
    for entry in waiting:
        try:
            cancel_operation(entry.operation, actor=actor, reason=f"Rollout #{rollout.pk}: {why}")
        except OperationRefused:  # a worker took it meanwhile: it finishes and is judged
            continue
        RolloutStack.objects.filter(pk=entry.pk).update(
            status=RolloutStackStatus.PENDING, operation=None
        )
        withdrawn += 1
    return withdrawn


def halt(rollout: Rollout, *, reason: str) -> bool:
    """The engine's stop on a failed wave (RUNNING or PAUSED → HALTED); False if it was not."""
    try:
        transition(rollout, RolloutAction.HALT, RolloutStatus.HALTED, None, detail=reason)
    except ValidationError:
        return False
    return True


def record(rollout: Rollout, action: str, actor: Any, message: str, changes: dict) -> None:
    audit.record(
        actor=actor,
        action=AuditAction.CREATE if action == RolloutAction.CREATE else AuditAction.UPDATE,
        target=rollout,
        message=message,
        changes={"rollout_action": str(action), **changes},
    )
