"""Repairing every row of one drift kind at once ("Write cfadmin's record to PocketBase: all
9,177"): asked for in the admin as one audited request, queued once, done by one job that
applies the single repair to each row (each looking at the remote side again, each audited as
a single repair is) and then compares again, noting what it did on the new report.

The same rules as a single repair: only from the latest report, only repairs it lists, a
destructive one only after "I am sure"; and one such request per kind and repair at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cfadmin import audit, jobs
from cfadmin.models import AuditAction
from cfadmin.queued_once import request_once
from stacks.choices import Repair
from stacks.clients.errors import ClientError
from stacks.models import ReconcileRun
from stacks.reconcile.refused import RepairRefused
from stacks.reconcile.repairs import repair
from stacks.reconcile.report import kind_label
from stacks.reconcile.runs import run_reconcile

logger = logging.getLogger(__name__)

BULK_REPAIR_TASK = "stacks.tasks.repair_drift_kind_task"
# One repair is a few remote calls: thousands take minutes. A request older than this whose
# job never reported lost its worker, and may be asked for again.
BULK_STALE_AFTER = timedelta(minutes=30)
# Reasons quoted on the new report's note when some rows could not be repaired.
NOTE_REASONS = 3


def bulk_job(drift_kind: str, repair_kind: str) -> str:
    return f"repair_drift_kind:{drift_kind}:{repair_kind}"


def bulk_label(drift_kind: str, repair_kind: str) -> str:
    """How the request, its audit event and the report it leaves are named."""
    return f"{Repair(repair_kind).label} for every “{kind_label(drift_kind)}” row"


def bulk_targets(run: ReconcileRun | None, drift_kind: str, repair_kind: str) -> list[str]:
    """The targets of the run's rows of `drift_kind` that offer `repair_kind`."""
    if run is None:
        return []
    return [
        row["target"]
        for row in run.drift
        if row["kind"] == drift_kind and repair_kind in row["repairs"]
    ]


def bulk_repair_refusal(
    run: ReconcileRun | None, drift_kind: str, repair_kind: str, *, confirmed: bool
) -> str:
    """Why this bulk repair may not be queued from this run ("" when it may); the messages of
    a single repair's refusals."""
    if run is not None and run.pk != ReconcileRun.latest_finished_id():
        return "A newer report exists; repair from it (it shows what is still wrong)."
    if repair_kind not in Repair.values or not bulk_targets(run, drift_kind, repair_kind):
        return "That repair is not in this report; reconcile again and use the new report."
    if Repair(repair_kind).is_destructive and not confirmed:
        return f"{Repair(repair_kind).label}: tick “I am sure” first; nothing was changed."
    return ""


def request_bulk_repair(
    run: ReconcileRun | None,
    drift_kind: str,
    repair_kind: str,
    *,
    actor: Any,
    confirmed: bool,
    enqueue: Callable[..., None] | None = None,
) -> int:
    """Queue one job repairing every row of `drift_kind` that offers `repair_kind`; returns how
    many rows. RepairRefused says why not; AlreadyQueued when the same is queued or running.
    The request is an audit event (who, which kind and repair) before the worker acts."""
    refusal = bulk_repair_refusal(run, drift_kind, repair_kind, confirmed=confirmed)
    if refusal:
        raise RepairRefused(refusal)
    assert run is not None  # bulk_repair_refusal refuses without a run
    count = len(bulk_targets(run, drift_kind, repair_kind))
    label = bulk_label(drift_kind, repair_kind)
    actor_id = getattr(actor, "pk", None)
    request_once(
        bulk_job(drift_kind, repair_kind),
        actor=actor,
        label=f"{label} ({count} from report #{run.pk})",
        # Served when the job's own report (it compares again at the end) exists.
        served=lambda moment: ReconcileRun.objects.filter(
            started_at__gte=moment, finished_at__isnull=False, note__startswith=label
        ).exists(),
        queue=lambda: (enqueue or jobs.enqueue)(
            BULK_REPAIR_TASK, run.pk, drift_kind, repair_kind, actor_id
        ),
        stale_after=BULK_STALE_AFTER,
    )
    return count


def repair_drift_kind(run_id: int, drift_kind: str, repair_kind: str, *, actor: Any) -> str:
    """The worker's side: each row's repair (RepairRefused or a client error skips that row,
    not the others), one audit event with the outcome, and a fresh comparison whose note says
    what was done."""
    run = ReconcileRun.objects.filter(pk=run_id).first()
    targets = bulk_targets(run, drift_kind, repair_kind)
    repaired = 0
    reasons: list[str] = []
    for target in targets:
        try:
            repair(repair_kind, target, actor=actor)
            repaired += 1
        except (RepairRefused, ClientError) as error:
            reasons.append(f"{target}: {error}")
        except Exception:  # one odd row must not leave the others undone and no report
            logger.exception("bulk repair %s of %s failed", repair_kind, target)
            reasons.append(f"{target}: unexpected error (the worker log has it)")
    label = bulk_label(drift_kind, repair_kind)
    summary = f"{repaired} of {len(targets)} repaired"
    if reasons:
        summary += f"; {len(reasons)} not: " + "; ".join(reasons[:NOTE_REASONS])
        if len(reasons) > NOTE_REASONS:
            summary += "; …"
    audit.record(
        actor=actor,
        action=AuditAction.OPERATION,
        message=f"{label}: {summary}",
        changes={
            "job": bulk_job(drift_kind, repair_kind) + ":done",
            "report": run_id,
            "repaired": repaired,
            "not_repaired": len(reasons),
        },
    )
    run_reconcile(actor=actor, note=f"{label}: {summary}")
    return summary
