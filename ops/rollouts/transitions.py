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
from ops.models.rollouts import ACTION_FROM

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
    rollout.refresh_from_db()
    return rollout


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
