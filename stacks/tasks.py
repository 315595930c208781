"""django-q2 tasks: load by primary key, call one service. Arguments are pks, never objects."""

from __future__ import annotations

from typing import Any

from stacks import provisioning, reconcile, services
from stacks.choices import Repair
from stacks.clients.errors import ClientError
from stacks.provisioning import recovery
from stacks.remote import outbox as pocketbase_outbox
from stacks.services import bulk


def run_operation_task(operation_id: int) -> bool:
    return provisioning.run_operation(operation_id)


def recover_stale_operations_task() -> dict[str, list[int]]:
    return recovery.recover_stale_operations(enqueue=services.enqueue_operation)


def drain_pocketbase_outbox_task() -> dict[str, Any]:
    """Deliver the PocketBase records that are due (queued after a change, and every minute)."""
    try:
        return pocketbase_outbox.drain().as_dict()
    except ClientError as error:  # not configured in this worker: the records wait
        return {"error": str(error)}


def reconcile_task(user_id: int | None = None) -> int:
    """A reconcile (the schedule's, or one asked for in the admin); returns the drift count."""
    return reconcile.run_reconcile(actor=_user(user_id) or "schedule").drift_count


def repair_drift_task(kind: str, target: str, user_id: int | None) -> str:
    """One repair asked for in the admin, then a fresh comparison for the page."""
    actor = _user(user_id)
    try:
        done = reconcile.repair(kind, target, actor=actor)
    except (reconcile.RepairRefused, ClientError) as error:
        done = f"Not repaired: {error}"
    reconcile.run_reconcile(actor=actor, note=f"{Repair(kind).label} ({target}): {done}")
    return done


def repair_drift_kind_task(
    run_id: int, drift_kind: str, repair_kind: str, user_id: int | None
) -> str:
    """Every row of one drift kind repaired (asked for in the admin), then a fresh comparison."""
    return reconcile.repair_drift_kind(run_id, drift_kind, repair_kind, actor=_user(user_id))


def bulk_request_task(
    stack_ids: list[int],
    kind: str,
    user_id: int | None,
    description: str,
    filters: dict[str, str],
    request_id: int,
) -> dict[str, Any]:
    """A confirmed "Apply to all N matching…" (stacks.services.bulk): the operations requested
    a chunk at a time; returns the counts (the audit trail has them too)."""
    result = bulk.request_for_ids(
        stack_ids,
        kind,
        actor=_user(user_id),
        description=description,
        filters=filters,
        request_id=request_id,
    )
    return {"queued": result.queued, "skipped": result.skipped, "matched": result.matched}


def _user(user_id: int | None) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user_id).first() if user_id else None
