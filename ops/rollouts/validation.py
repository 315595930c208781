"""A rollout redeploy's validation: the runbook's post-deploy checklist, opened for the
redeploy (ops.checklists opens it by itself only for deploys) and probed; the wave's gate
reads its automatic items: any failed one fails the stack, and it passes once every probe ran.
Items a person must tick do not hold a rollout back (they stay on the run's page).

Probes can be lost (their queued task never ran, a worker died mid-hook): half-way through
ROLLOUT_VALIDATION_TIMEOUT_MINUTES the probes still not run are queued once more, and at the
timeout the stack fails (`timeout`, `began`, `requeue_probes`, `timed_out`)."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from cfadmin.models import AuditAction
from cfadmin.queued_once import AlreadyQueued
from ops.checklists import active_procedure, run_probes, start_run
from ops.models import ChecklistRun, ItemState
from ops.procedures import POST_DEPLOY
from stacks.models import Operation

logger = logging.getLogger(__name__)

WAITING, PASSED, FAILED = "waiting", "passed", "failed"


def run_for(operation: Operation) -> ChecklistRun | None:
    return ChecklistRun.objects.filter(operation=operation).order_by("pk").first()


def open_run(operation: Operation) -> ChecklistRun:
    """The redeploy's validation run, opened once and linked to the operation (call it under
    the rollout's row lock: the hook and the schedule may both try)."""
    run = run_for(operation)
    if run is None:
        run = start_run(
            active_procedure(POST_DEPLOY),
            actor=None,
            stack=operation.stack,
            note=f"Opened by {operation} (template rollout)",
        )
        run.operation = operation
        run.save(update_fields=["operation"])
    return run


def queue_probes(run: ChecklistRun) -> None:
    """Queue the run's automatic checks (unless queued already)."""
    from ops.probes import request_probes

    with contextlib.suppress(AlreadyQueued):
        request_probes(run, actor=None)


def timeout() -> timedelta:
    """How long a redeploy's validation may take (at least a minute)."""
    return timedelta(minutes=max(1, int(settings.ROLLOUT_VALIDATION_TIMEOUT_MINUTES)))


def began(operation: Operation, run: ChecklistRun) -> datetime:
    """When the validation's clock starts: the redeploy's end, or the run's opening if later
    (a schedule that was down must not fail stacks whose probes never had their chance)."""
    ended = operation.finished_at or run.started_at
    return max(ended, run.started_at)


def requeue_probes(run: ChecklistRun, *, since: datetime) -> bool:
    """Queue the run's automatic checks once more, unless that was done at or after `since`
    (so once); True when queued. A request made before `since` is the lost one: it would still
    hold "one queued at a time" for PROBES_REQUEST_STALE_AFTER, so it is not waited for."""
    from ops.probes import probe_events, request_probes

    if probe_events(run, AuditAction.OPERATION, since).exists():
        return False
    try:
        request_probes(
            run, actor=None, stale_after=max(timezone.now() - since, timedelta(seconds=1))
        )
    except AlreadyQueued:  # a person asked for them this very moment
        return False
    logger.warning("checklist run #%s: validation probes not run yet, queued again", run.pk)
    return True


def timed_out(run: ChecklistRun, why: str) -> str:
    """The failure of a validation that did not finish within the timeout."""
    minutes = int(timeout().total_seconds() // 60)
    return f"validation did not finish within {minutes} min (checklist run #{run.pk}: {why})"


def probe_now(run: ChecklistRun) -> None:
    """Run the automatic checks here (in a worker: the operation hook)."""
    run_probes(run)


def verdict(operation: Operation) -> tuple[str, str]:
    """(WAITING | PASSED | FAILED, why) of the redeploy's validation run."""
    run = run_for(operation)
    if run is None:
        return WAITING, "validation checklist not opened yet"
    items = list(run.items.exclude(step__probe="").select_related("step"))
    failed = [item for item in items if item.state == ItemState.FAILED]
    if failed:
        return FAILED, f"validation failed: {failed[0].step.text} (checklist run #{run.pk})"
    unprobed = [
        item
        for item in items
        if item.state == ItemState.PENDING and not (item.evidence or {}).get("checked_at")
    ]
    if unprobed:
        return WAITING, f"{len(unprobed)} automatic check(s) not run yet"
    return PASSED, ""
