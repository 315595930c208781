"""What a stored reconcile run offers a person: its rows with their repair buttons, and whether
a repair asked for from it may be queued (listed in the latest report, confirmed if destructive)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cfadmin import audit, jobs
from cfadmin.models import AuditAction
from stacks.choices import DriftKind, Repair
from stacks.models import ReconcileRun
from stacks.reconcile.refused import RepairRefused


def report_rows(run: ReconcileRun | None) -> list[dict[str, Any]]:
    """The run's drift rows, with the kind's label and the repairs offered as buttons."""
    rows = []
    for drift in run.drift if run else []:
        rows.append(
            {
                **drift,
                "kind_label": DriftKind(drift["kind"]).label
                if drift["kind"] in DriftKind.values
                else drift["kind"],
                "repair_buttons": [
                    {
                        "kind": kind,
                        "label": Repair(kind).label,
                        "destructive": Repair(kind).is_destructive,
                    }
                    for kind in drift["repairs"]
                    if kind in Repair.values
                ],
            }
        )
    return rows


def is_latest(run: ReconcileRun | None) -> bool:
    """Only the latest finished run's repairs may be used: an older one shows old drift."""
    latest = ReconcileRun.latest_finished()
    return run is not None and latest is not None and run.pk == latest.pk


def repair_refusal(run: ReconcileRun | None, kind: str, target: str, *, confirmed: bool) -> str:
    """Why this repair may not be queued from this run ("" when it may)."""
    listed = run is not None and any(
        d["target"] == target and kind in d["repairs"] for d in run.drift
    )
    latest = ReconcileRun.latest_finished()
    if run is not None and (latest is None or run.pk != latest.pk):
        return "A newer report exists; repair from it (it shows what is still wrong)."
    if not listed:
        return "That repair is not in this report; reconcile again and use the new report."
    if Repair(kind).is_destructive and not confirmed:
        return f"{Repair(kind).label}: tick “I am sure” first; nothing was changed."
    return ""


def request_repair(
    run: ReconcileRun | None,
    kind: str,
    target: str,
    *,
    actor: Any,
    confirmed: bool,
    enqueue: Callable[..., None] | None = None,
) -> None:
    """Queue a repair offered by `run` (RepairRefused says why not); the request goes into the
    audit trail with who asked, before the worker does it."""
    refusal = repair_refusal(run, kind, target, confirmed=confirmed)
    if refusal:
        raise RepairRefused(refusal)
    audit.record(
        actor=actor,
        action=AuditAction.OPERATION,
        message=f"{Repair(kind).label} requested for {target}",
        changes={"job": "repair_drift", "repair": kind, "target": target},
    )
    (enqueue or jobs.enqueue)(
        "stacks.tasks.repair_drift_task", kind, target, getattr(actor, "pk", None)
    )
