"""Writing cfadmin's record of a stack to PocketBase for reconcile (through the outbox),
audited; shared by the repairs and the import."""

from __future__ import annotations

from typing import Any

from cfadmin import audit
from cfadmin.models import AuditAction
from stacks.clients.pocketbase import PocketBaseClient
from stacks.models import Stack
from stacks.remote.outbox import Outcome, deliver_record, queue_upsert


def push_record(stack: Stack, *, actor: Any, pocketbase: PocketBaseClient) -> str:
    # Through the outbox: a change of the record still queued there must not be written after
    # this one (it delivers the newest state only).
    queue_upsert(stack, stack.status)
    delivery = deliver_record(stack.tenant.slug, stack.stack_name, pocketbase)
    if delivery.error is not None:
        raise delivery.error  # still queued when PocketBase did not answer: retried later
    if delivery.outcome == Outcome.BUSY:
        message = f"Queued cfadmin's record for PocketBase (status {stack.status})."
    else:
        message = f"Wrote the PocketBase record from cfadmin (status {stack.status})."
    audit.record(
        actor=actor, action=AuditAction.UPDATE, target=stack, message=f"Reconcile: {message}"
    )
    return message
