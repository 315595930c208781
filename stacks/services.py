"""Workflows over several stack rows: requesting operations, key rotation. Each one audits."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from cfadmin import audit, encryption
from cfadmin.models import AuditAction
from stacks.choices import OperationStatus
from stacks.models import Operation, Stack, StackSecret


class OperationRefused(Exception):
    """The stack cannot take this operation now; `code` says why (for JSON and messages)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def enqueue_operation(operation_id: int) -> None:
    from django_q.tasks import async_task  # imported late: the cluster config loads with it

    async_task(
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
) -> Operation:
    """Queue one operation on a stack, after the current transaction commits.

    At most one operation per stack is queued or running (a database constraint), so two
    clicks or two shells never start two deploys. Parameters must never hold secret values.
    """
    if not stack.accepts(kind):
        raise OperationRefused(
            "not_allowed",
            f"{stack} is {stack.get_status_display().lower()}: it does not accept {kind}.",
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
            )
    except IntegrityError:
        raise OperationRefused(
            "operation_in_flight",
            f"{stack} already has an operation queued or running; wait for it to finish.",
        ) from None
    audit.record(
        actor=actor,
        action=AuditAction.OPERATION,
        target=operation,
        message=f"{operation.get_kind_display()} requested",
        changes={"parameters": parameters or {}},
    )
    transaction.on_commit(lambda: enqueue_operation(operation.pk))
    return operation


def rotate_encryption_keys() -> tuple[int, int]:
    """Re-encrypt every secret not yet under the current key. Returns (rotated, total)."""
    rotated = total = 0
    for secret in StackSecret.objects.only("pk", "value_encrypted").iterator():
        total += 1
        if encryption.needs_rotation(secret.value_encrypted):
            StackSecret.objects.filter(pk=secret.pk).update(
                value_encrypted=encryption.rotate(secret.value_encrypted)
            )
            rotated += 1
    return rotated, total
