"""Where rollouts advance from: the schedule (every minute, ops/schedules.py) and the hook run
after each operation ends (OPERATION_SUCCESS_HOOKS / OPERATION_FAILURE_HOOKS): a rollout's
redeploy opens its validation run and probes it there, in the worker, then the rollout
advances at once instead of up to a minute later."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q

from ops.models import Rollout, RolloutStatus
from ops.models.rollouts import ACTIVE_STACK_STATES
from ops.rollouts import validation
from ops.rollouts.gate import advance
from stacks.choices import IN_FLIGHT_OPERATION_STATUSES, OperationStatus
from stacks.models import Operation

logger = logging.getLogger(__name__)

MOVING = (RolloutStatus.RUNNING, RolloutStatus.PAUSED, RolloutStatus.HALTED)


def advance_all_task() -> int:
    """Schedule entry point: advance every rollout that is moving or has redeploys or
    rollbacks in flight; returns how many were looked at. One rollout's error does not stop
    the others; the first is raised at the end."""
    ids = list(
        Rollout.objects.filter(
            Q(status__in=MOVING)
            | Q(stacks__status__in=ACTIVE_STACK_STATES)
            | Q(stacks__rollback_operation__status__in=IN_FLIGHT_OPERATION_STATUSES)
        )
        .exclude(status=RolloutStatus.DRAFT)
        .values_list("pk", flat=True)
        .distinct()
    )
    first_error: Exception | None = None
    for pk in ids:
        try:
            advance(pk)
        except Exception as error:
            logger.exception("rollout %s: advance failed", pk)
            first_error = first_error or error
    if first_error is not None:
        raise first_error
    return len(ids)


def advance_task(rollout_id: int) -> None:
    """Queue entry point (cfadmin.jobs.enqueue): advance one rollout."""
    advance(rollout_id)


def operation_finished(operation: Operation) -> None:
    """OPERATION_SUCCESS_HOOKS / OPERATION_FAILURE_HOOKS: a rollout's redeploy (or rollback)
    ended. A succeeded redeploy of a rollout that requires validation gets its validation run,
    probed here (outside the rollout's lock); then the rollout advances."""
    rollout_id = (operation.parameters or {}).get("rollout_id")
    if not rollout_id:
        return
    run = None
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().filter(pk=rollout_id).first()
        if rollout is None:
            return
        if (
            rollout.require_validation
            and not operation.parameters.get("rollback")
            and operation.status == OperationStatus.SUCCEEDED
            and validation.run_for(operation) is None
        ):
            run = validation.open_run(operation)
    if run is not None:
        validation.probe_now(run)
    advance(rollout_id)
