"""What a stored reconcile run offers a person: its rows grouped by kind, a page of each
group at a time with their repair buttons, and whether a repair asked for from it may be queued
(listed in the latest report, confirmed if destructive)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator

from cfadmin import audit, jobs
from cfadmin.models import AuditAction
from stacks.choices import DriftKind, Repair
from stacks.models import ReconcileRun
from stacks.reconcile import stored_drift
from stacks.reconcile.refused import RepairRefused

# Rows of one kind shown at a time: a PocketBase reset makes one row per stack (thousands).
ROWS_PER_PAGE = stored_drift.HEAD_ROWS  # the first page comes from the run's stored index


def kind_label(kind: str) -> str:
    return DriftKind(kind).label if kind in DriftKind.values else kind


def _decorated(drift: dict[str, Any]) -> dict[str, Any]:
    return {
        **drift,
        "kind_label": kind_label(drift["kind"]),
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


def report_rows(run: ReconcileRun | None) -> list[dict[str, Any]]:
    """The run's drift rows, with the kind's label and the repairs offered as buttons."""
    return [_decorated(drift) for drift in (run.drift if run else [])]


@dataclass
class DriftGroup:
    """The rows of one drift kind: how many, the page of them shown (`page` numbers it, `rows`
    holds it), and the repairs that apply to all of them at once (each with how many rows
    offer it)."""

    kind: str
    label: str
    count: int
    page: Page
    rows: list[dict[str, Any]] = field(default_factory=list)
    bulk_repairs: list[dict[str, Any]] = field(default_factory=list)


def report_groups(
    run: ReconcileRun | None,
    *,
    kind: str = "",
    page: Any = 1,
    per_page: int = ROWS_PER_PAGE,
) -> list[DriftGroup]:
    """The run's drift grouped by kind (in DriftKind's order, unknown kinds last); each group
    shows its first page, the group `kind` its page `page`. Counted from the run's stored
    index and only the rows shown fetched (stacks.reconcile.stored_drift: two small queries
    whatever the number of rows); only they are decorated and rendered."""
    if run is None or run.pk is None:
        return []
    using = run._state.db or "default"
    stored = stored_drift.reader(run.pk, using=using)
    summary = stored.kind_counts(list(Repair.values))
    counts = {k: total for k, (total, _offered) in summary.items() if k}
    if not counts:
        return []
    order = {value: position for position, value in enumerate(DriftKind.values)}
    kinds = sorted(counts, key=lambda k: (order.get(k, len(order)), k))
    pages = {
        k: Paginator(range(counts[k]), per_page).get_page(page if k == kind else 1) for k in kinds
    }
    rows = stored.page_rows({k: (pages[k].start_index() - 1, per_page) for k in kinds})
    return [
        DriftGroup(
            kind=k,
            label=kind_label(k),
            count=counts[k],
            page=pages[k],
            rows=[_decorated(drift) for drift in rows[k]],
            bulk_repairs=[
                {
                    "kind": repair.value,
                    "label": repair.label,
                    "destructive": repair.is_destructive,
                    "count": summary[k][1][repair.value],
                }
                for repair in Repair
                if repair.value in summary[k][1]
            ],
        )
        for k in kinds
    ]


def is_latest(run: ReconcileRun | None) -> bool:
    """Only the latest finished run's repairs may be used: an older one shows old drift."""
    return run is not None and run.pk == ReconcileRun.latest_finished_id()


def repair_refusal(run: ReconcileRun | None, kind: str, target: str, *, confirmed: bool) -> str:
    """Why this repair may not be queued from this run ("" when it may)."""
    listed = run is not None and any(
        d["target"] == target and kind in d["repairs"] for d in run.drift
    )
    if run is not None and run.pk != ReconcileRun.latest_finished_id():
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
