"""Reconcile: compare cfadmin with Coolify and PocketBase (drift), repair on request (repairs),
adopt lost stacks (importer), run and keep comparisons (runs), offer repairs (report)."""

from stacks.reconcile.bulk import (
    BULK_REPAIR_TASK,
    bulk_repair_refusal,
    repair_drift_kind,
    request_bulk_repair,
)
from stacks.reconcile.drift import (
    STATUS_SETTLE_TIME,
    UNSETTLED,
    Drift,
    containers_running,
    coolify_status,
    find_drift,
    service_identity,
)
from stacks.reconcile.importer import import_stack
from stacks.reconcile.refused import RepairRefused
from stacks.reconcile.repairs import apply_repairs, repair, unattended_kinds
from stacks.reconcile.report import (
    ROWS_PER_PAGE,
    DriftGroup,
    is_latest,
    repair_refusal,
    report_groups,
    report_rows,
    request_repair,
)
from stacks.reconcile.runs import (
    KEEP_RUNS_DAYS,
    RECONCILE_JOB,
    REQUEST_STALE_AFTER,
    UNFINISHED_AFTER,
    comparison_running,
    is_lost,
    request_reconcile,
    run_reconcile,
)

__all__ = [
    "BULK_REPAIR_TASK",
    "KEEP_RUNS_DAYS",
    "RECONCILE_JOB",
    "REQUEST_STALE_AFTER",
    "ROWS_PER_PAGE",
    "STATUS_SETTLE_TIME",
    "UNFINISHED_AFTER",
    "UNSETTLED",
    "Drift",
    "DriftGroup",
    "RepairRefused",
    "apply_repairs",
    "bulk_repair_refusal",
    "comparison_running",
    "containers_running",
    "coolify_status",
    "find_drift",
    "import_stack",
    "is_latest",
    "is_lost",
    "repair",
    "repair_drift_kind",
    "repair_refusal",
    "report_groups",
    "report_rows",
    "request_bulk_repair",
    "request_reconcile",
    "request_repair",
    "run_reconcile",
    "service_identity",
    "unattended_kinds",
]
