"""One operation on every stack a query matches (issue 17, "bulk by query"): "redeploy every
outdated telegram-bot stack of ring standard" is one confirmed request for 3,000 stacks, queued
as background operations in the shared Coolify budget (stacks.services.dispatch hands them to
the workers a few at a time), never 3,000 clicks.

Two halves. The web request (`queue_for_query`) only checks, reads the matching ids once (what
the person saw confirmed is what gets requested, whatever matches later), records the request
in the audit trail and queues ONE job: requesting thousands of operations takes tens of
thousands of queries, far past the web server's timeout. The job (`request_for_ids`, run by
stacks.tasks.bulk_request_task) requests them a chunk at a time, each chunk in its own
transaction, so a chunk's operations are handed over as soon as it commits and what was
requested stays requested if the job dies midway; its outcome (or how far it got) is a second
audit event. Each operation is tagged with the request's audit event, so running the job again
never requests a stack twice, even one whose operation has finished since."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from cfadmin import audit
from cfadmin.jobs import enqueue
from cfadmin.models import AuditAction, AuditEvent
from stacks.choices import OperationKind
from stacks.models import Operation, Stack
from stacks.services.operations import request_operations

# Kinds a bulk request may ask for: the everyday lifecycle, never a delete or a rotation.
BULK_KINDS = (
    OperationKind.REDEPLOY,
    OperationKind.RESTART,
    OperationKind.STOP,
    OperationKind.START,
)
BULK_TASK = "stacks.tasks.bulk_request_task"
# The audit events' `changes["job"]`: the request, then its outcome (done or failed).
BULK_JOB = "bulk_by_query"
# The operations' parameter naming the request (its audit event) they were requested by.
REQUEST_PARAMETER = "bulk_request"
CHUNK = 200
SKIPPED_SHOWN = 10


class BulkRefused(ValueError):
    """The request cannot be queued; the message names the field and the rule."""


@dataclass
class BulkResult:
    matched: int
    processed: int = 0  # ids looked at so far (all of them when the job finished)
    queued: int = 0
    skipped: int = 0
    # A few of the skipped stacks' reasons, for the audit event; `skipped` counts them all.
    skipped_examples: list[str] = field(default_factory=list)

    def add_skipped(self, reasons: list[str]) -> None:
        self.skipped += len(reasons)
        room = max(SKIPPED_SHOWN - len(self.skipped_examples), 0)
        self.skipped_examples += reasons[:room]


def bulk_label(kind: str, count: int) -> str:
    """How the request, its outcome and the messages name it: "Bulk redeploy of 3,000 stacks"."""
    return f"Bulk {OperationKind(kind).label.lower()} of {count:,} stack{'s' if count != 1 else ''}"


def check_kind(kind: str) -> None:
    if kind not in BULK_KINDS:
        raise BulkRefused(f"operation: one of {', '.join(k.value for k in BULK_KINDS)}")


def queue_for_query(
    queryset: QuerySet,
    kind: str,
    *,
    actor: Any,
    description: str,
    filters: dict[str, str],
    shown_count: int | None = None,
) -> int:
    """The web request's half: queue one job requesting `kind` on every stack `queryset`
    matches now; returns how many. `shown_count`, the count the person confirmed, must still
    be the count (else BulkRefused: they confirm again, seeing the new one). `description`
    (the filter in words) and `filters` (the query's parameters) go into the audit events.
    A bounded number of queries whatever the count: the ids are read in one."""
    check_kind(kind)
    ids = list(queryset.order_by("pk").values_list("pk", flat=True))
    if not ids:
        raise BulkRefused("stacks: none match the filter now; nothing was requested.")
    if shown_count is not None and shown_count != len(ids):
        raise BulkRefused(
            f"stacks: {len(ids):,} match the filter now, not the {shown_count:,} shown; "
            "check the new count and confirm again."
        )
    with transaction.atomic():  # the job is queued only if the request is recorded
        event = audit.record(
            actor=actor,
            action=AuditAction.OPERATION,
            message=f"{bulk_label(kind, len(ids))} requested (matching {description})",
            changes={
                "job": BULK_JOB,
                "kind": kind,
                "filters": filters,
                "count": len(ids),
                "background": True,
            },
        )
        enqueue(
            BULK_TASK,
            ids,
            str(kind),
            getattr(actor, "pk", None),
            description,
            filters,
            event.pk,
            task_name=f"bulk-request-{event.pk}",
            timeout=settings.Q_CLUSTER["timeout"],
        )
    return len(ids)


def request_for_ids(
    ids: list[int],
    kind: str,
    *,
    actor: Any,
    description: str,
    filters: dict[str, str],
    request_id: int,
    chunk_size: int = CHUNK,
) -> BulkResult:
    """The job's half: request `kind` as a background operation on each stack of `ids`, a chunk
    at a time. A stack that cannot take it (busy, contained, wrong status, gone, or already
    requested by this request `request_id`) is skipped and counted. Ends with one audit event
    saying the counts; if a chunk fails, the event says how far it got and the error is
    raised again (the chunks before it stay requested)."""
    check_kind(kind)
    result = BulkResult(matched=len(ids))
    try:
        for start in range(0, len(ids), chunk_size):
            chunk = ids[start : start + chunk_size]
            _request_chunk(chunk, kind, actor=actor, request_id=request_id, result=result)
            result.processed += len(chunk)
    except Exception as error:
        _record_outcome(result, kind, actor, description, filters, request_id, error=error)
        raise
    _record_outcome(result, kind, actor, description, filters, request_id)
    return result


def _request_chunk(
    chunk: list[int], kind: str, *, actor: Any, request_id: int, result: BulkResult
) -> None:
    with transaction.atomic():
        already = set(
            Operation.objects.filter(
                stack_id__in=chunk, **{f"parameters__{REQUEST_PARAMETER}": request_id}
            ).values_list("stack_id", flat=True)
        )
        stacks = list(Stack.objects.filter(pk__in=chunk).select_related("tenant").order_by("pk"))
        found = {stack.pk for stack in stacks}
        queued, skipped = request_operations(
            [stack for stack in stacks if stack.pk not in already],
            kind,
            actor=actor,
            parameters={REQUEST_PARAMETER: request_id},
            background=True,
        )
    result.queued += len(queued)
    gone = [f"stack #{pk} no longer exists" for pk in chunk if pk not in found]
    done = [f"{s}: already requested by this request" for s in stacks if s.pk in already]
    result.add_skipped(gone + done + [reason for _, reason in skipped])


def _record_outcome(
    result: BulkResult,
    kind: str,
    actor: Any,
    description: str,
    filters: dict[str, str],
    request_id: int,
    *,
    error: Exception | None = None,
) -> AuditEvent:
    counts = f"{result.queued:,} queued as background operations, {result.skipped:,} skipped"
    if result.skipped_examples:
        counts += " (" + "; ".join(result.skipped_examples[:3])
        counts += "; …)" if result.skipped > 3 else ")"
    label = bulk_label(kind, result.matched)
    if error is None:
        message = f"{label} (matching {description}): {counts}"
    else:
        message = (
            f"{label} (matching {description}) stopped after {result.processed:,} of "
            f"{result.matched:,}: {counts}; error: {error}. What was queued stays queued."
        )
    return audit.record(
        actor=actor,
        action=AuditAction.OPERATION_RESULT,
        message=message,
        changes={
            "job": f"{BULK_JOB}:{'failed' if error else 'done'}",
            "request": request_id,
            "kind": kind,
            "filters": filters,
            **asdict(result),
            **({"error": f"{type(error).__name__}: {error}"} if error else {}),
        },
    )
