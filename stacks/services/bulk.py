"""One operation on every stack a query matches (issue 17, "bulk by query"): "redeploy every
outdated telegram-bot stack of ring standard" is one confirmed request for 3,000 stacks, queued
as background operations in the shared Coolify budget (stacks.services.dispatch hands them to
the workers a few at a time), never 3,000 clicks.

The matching stacks are read as ids, then loaded and requested a chunk at a time, each chunk in
its own transaction: never every stack object at once, and a chunk's operations are handed over
as soon as it commits. One audit event records the request (kind, filter, count); each operation
has its own, as always."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from cfadmin import audit
from cfadmin.models import AuditAction
from stacks.choices import OperationKind
from stacks.models import Stack
from stacks.services.operations import request_operations

# Kinds a bulk request may ask for: the everyday lifecycle, never a delete or a rotation.
BULK_KINDS = (
    OperationKind.REDEPLOY,
    OperationKind.RESTART,
    OperationKind.STOP,
    OperationKind.START,
)
CHUNK = 200
SKIPPED_SHOWN = 10


@dataclass
class BulkResult:
    matched: int
    queued: int = 0
    skipped: int = 0
    # A few of the skipped stacks' reasons, for the message; `skipped` counts them all.
    skipped_examples: list[str] = field(default_factory=list)


def request_for_query(
    queryset: QuerySet,
    kind: str,
    *,
    actor: Any,
    description: str,
    filters: dict[str, str],
    chunk_size: int = CHUNK,
) -> BulkResult:
    """Request `kind` as a background operation on every stack `queryset` matches now.
    `description` (the filter in words) and `filters` (the query's parameters) go into the
    audit event. A stack that cannot take it (busy, contained, wrong status) is skipped."""
    if kind not in BULK_KINDS:
        raise ValueError(f"operation: one of {', '.join(k.value for k in BULK_KINDS)}")
    ids = list(queryset.order_by("pk").values_list("pk", flat=True))
    label = OperationKind(kind).label.lower()
    audit.record(
        actor=actor,
        action=AuditAction.OPERATION,
        message=f"Bulk {label} requested for {len(ids)} stack(s) matching {description}",
        changes={"kind": kind, "filters": filters, "count": len(ids), "background": True},
    )
    result = BulkResult(matched=len(ids))
    for start in range(0, len(ids), chunk_size):
        chunk = ids[start : start + chunk_size]
        stacks = list(Stack.objects.filter(pk__in=chunk).select_related("tenant").order_by("pk"))
        with transaction.atomic():
            queued, skipped = request_operations(stacks, kind, actor=actor, background=True)
        result.queued += len(queued)
        result.skipped += len(skipped)
        room = SKIPPED_SHOWN - len(result.skipped_examples)
        result.skipped_examples += [reason for _, reason in skipped[: max(room, 0)]]
    return result
