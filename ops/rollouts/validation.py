"""A rollout redeploy's validation: the runbook's post-deploy checklist, opened for the
redeploy (ops.checklists opens it by itself only for deploys) and probed; the wave's gate
reads its automatic items: any failed one fails the stack, and it passes once every probe ran.
Items a person must tick do not hold a rollout back (they stay on the run's page)."""

from __future__ import annotations

import contextlib
import logging

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
    from cfadmin.queued_once import AlreadyQueued
    from ops.probes import request_probes

    with contextlib.suppress(AlreadyQueued):
        request_probes(run, actor=None)


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
