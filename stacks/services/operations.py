"""Requesting, retrying and cancelling operations on stacks; each request is audited and its
run queued after the commit."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from cfadmin import audit
from cfadmin.jobs import enqueue
from cfadmin.models import AuditAction
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation, Stack
from stacks.remote import outbox as pocketbase_outbox
from stacks.services.dispatch import dispatch_soon


class OperationRefused(Exception):
    """The stack cannot take this operation now; `code` says why (for JSON and messages)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def enqueue_operation(operation_id: int) -> None:
    """Queue the operation's run after the current transaction commits."""
    enqueue(
        "stacks.tasks.run_operation_task",
        operation_id,
        task_name=f"operation-{operation_id}",
        timeout=settings.Q_CLUSTER["timeout"],
    )


def request_operation(
    stack: Stack,
    kind: str,
    *,
    actor: Any,
    parameters: dict[str, Any] | None = None,
    background: bool = False,
) -> Operation:
    """Queue one operation on a stack (see _request_operation); a background one is handed to
    the workers after the commit if a place is free."""
    operation = _request_operation(
        stack, kind, actor=actor, parameters=parameters, background=background
    )
    if background:
        dispatch_soon()
    return operation


def _request_operation(
    stack: Stack,
    kind: str,
    *,
    actor: Any,
    parameters: dict[str, Any] | None = None,
    background: bool = False,
) -> Operation:
    """Queue one operation on a stack, after the current transaction commits.

    At most one operation per stack is queued or running (a database constraint), so two
    clicks or two shells never start two deploys. Parameters must never hold secret values.

    `background=False` (what a person asked for): handed to the workers at once, and its
    Coolify calls go first in the shared budget. `background=True` (a rollout's wave, a bulk
    action by query): queued, and handed over by `stacks.services.dispatch` at most
    BACKGROUND_OPERATIONS_IN_FLIGHT at a time, oldest first, its calls leaving a larger
    reserve of the budget (stacks/clients/pacing.py).
    """
    refusal = stack.containment_refusal(kind)
    if refusal:
        raise OperationRefused("contained", f"{stack}: {refusal}.")
    if not stack.accepts(kind):
        raise OperationRefused(
            "not_allowed",
            f"{stack} is {stack.get_status_display().lower()}, so "
            f"{OperationKind(kind).label.lower()} is not possible.",
        )
    try:
        with transaction.atomic():
            operation = Operation.objects.create(
                stack=stack,
                kind=kind,
                status=OperationStatus.QUEUED,
                requested_by=actor if hasattr(actor, "pk") else None,
                requested_by_repr=audit.actor_label(actor)[:150],
                parameters=parameters or {},
                background=background,
                dispatched_at=None if background else timezone.now(),
            )
    except IntegrityError:
        raise OperationRefused(
            "operation_in_flight",
            f"{stack} already has an operation queued or running; wait for it to finish "
            "(a queued one that no worker takes can be cancelled on the stack's page).",
        ) from None
    audit.record(
        actor=actor,
        action=AuditAction.OPERATION,
        target=operation,
        message=f"{operation.get_kind_display()} requested",
        changes={"parameters": parameters or {}, **({"background": True} if background else {})},
    )
    if not background:
        enqueue_operation(operation.pk)
    return operation


def request_operations(
    stacks: list[Stack],
    kind: str,
    *,
    actor: Any,
    parameters: dict[str, Any] | None = None,
    background: bool = False,
) -> tuple[list[Operation], list[tuple[Stack, str]]]:
    """Queue `kind` on each stack; returns (queued, skipped with the reason for each).

    `background=True` for many stacks at once (see request_operation): the first ones are
    handed to the workers after the commit, the rest as those finish."""
    queued: list[Operation] = []
    skipped: list[tuple[Stack, str]] = []
    for stack in stacks:
        try:
            queued.append(
                _request_operation(
                    stack, kind, actor=actor, parameters=parameters, background=background
                )
            )
        except OperationRefused as refused:
            skipped.append((stack, refused.message))
    if background and queued:
        dispatch_soon()
    return queued, skipped


def retry_operation(stack: Stack, *, actor: Any) -> Operation:
    """A new operation that does what the stack's last failed one tried, resuming its work."""
    failed = stack.operations.filter(status=OperationStatus.FAILED).first()
    latest = stack.operations.first()
    if failed is None or latest is None or latest.pk != failed.pk:
        raise OperationRefused("nothing_to_retry", f"{stack}: its last operation did not fail.")
    return request_operation(
        stack, failed.kind, actor=actor, parameters={**failed.parameters, "retry_of": failed.pk}
    )


# The status an operation's run puts a stack in while it works (provisioning.WORKING_STATUS).
_WORKING = (StackStatus.DEPLOYING, StackStatus.DELETING)


def cancel_operation(operation: Operation, *, actor: Any, reason: str) -> Operation:
    """Cancel a queued operation, with a reason for the audit trail. A running or finished one
    is refused: a running one is doing remote work that must end by itself (or, if its worker
    died, is recovered).

    The stack keeps its status, which a queued operation has not changed; if an earlier attempt
    of this operation began (the stack says deploying or deleting), what exists in Coolify may be
    partial, so the stack goes to error, saying so. A task still in the queue for it finds it
    cancelled and does nothing (the claim only takes a queued operation).
    """
    reason = " ".join(reason.split())
    if not reason:
        raise OperationRefused(
            "reason_required", "Give a reason for cancelling: it goes into the audit trail."
        )
    refusal = cancellation_refusal(operation)
    if refusal:
        raise OperationRefused("not_queued", refusal)
    entry = None
    with transaction.atomic():
        cancelled = Operation.objects.filter(pk=operation.pk, status=OperationStatus.QUEUED).update(
            status=OperationStatus.CANCELLED,
            finished_at=timezone.now(),
            error=f"Cancelled by {audit.actor_label(actor)}: {reason}",
            result={"ok": False, "error": {"code": "cancelled", "message": reason}},
        )
        if not cancelled:
            operation.refresh_from_db()
            raise OperationRefused("not_queued", cancellation_refusal(operation))
        stack = Stack.objects.select_related("tenant").get(pk=operation.stack_id)
        before = stack.status
        after = stack_status_after_cancel(stack)
        if after != stack.status:
            stack.transition_to(
                after,
                detail=f"{operation} was cancelled ({reason}) after an attempt that did not "
                "finish: what exists in Coolify may be partial. Retry, redeploy or delete it.",
            )
            entry = pocketbase_outbox.queue_error(stack, kind=operation.kind)
        audit.record(
            actor=actor,
            action=AuditAction.OPERATION_RESULT,
            target=operation,
            message=f"{operation.get_kind_display()} cancelled: {reason}",
            changes={
                "reason": reason,
                "status": [OperationStatus.QUEUED, OperationStatus.CANCELLED],
                "stack_status": [before, stack.status],
            },
        )
    if entry is not None:
        pocketbase_outbox.request_drain()
    if operation.background:  # its place in the background cap is free
        dispatch_soon()
    operation.refresh_from_db()
    return operation


def stack_status_after_cancel(stack: Stack) -> str:
    """What cancelling its queued operation leaves the stack: as it is, or error when an earlier
    attempt began changing it (deploying or deleting)."""
    if stack.status in _WORKING and stack.can_transition(StackStatus.ERROR):
        return StackStatus.ERROR
    return stack.status


def cancellation_refusal(operation: Operation) -> str:
    """Why the operation cannot be cancelled, or "" when it can."""
    if operation.can_be_cancelled:
        return ""
    if operation.status == OperationStatus.RUNNING:
        return (
            f"{operation} is running: only a queued operation can be cancelled. It ends by "
            "itself; if its worker died, recovery resumes it or fails it."
        )
    return (
        f"{operation} is {operation.get_status_display().lower()} already: only a queued "
        "operation can be cancelled."
    )
