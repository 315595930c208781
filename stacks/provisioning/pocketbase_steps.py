"""The steps that settle a stack's final status and tell PocketBase, now or through the outbox."""

from __future__ import annotations

from django.db import transaction

from stacks.choices import OutboxAction, StackStatus
from stacks.models import PocketBaseOutboxEntry, Stack
from stacks.provisioning.base import RunnerBase
from stacks.provisioning.outcomes import Outcome, StepFailed, already, deferred, done, hint_for
from stacks.remote.outbox import Outcome as DeliveryOutcome
from stacks.remote.outbox import deliver_record, queue_delete, queue_upsert


def settle_stack(stack: Stack, status: str, *, detail: str) -> PocketBaseOutboxEntry:
    """Move the stack to `status` and queue its PocketBase record, in one transaction: a
    change cfadmin made is never without the record change that tells the platform."""
    with transaction.atomic():
        if stack.status != status:
            stack.transition_to(status, detail=detail)
        if status == StackStatus.DELETED:
            return queue_delete(stack)
        return queue_upsert(stack, status)


class PocketBaseSteps(RunnerBase):
    """sync_pocketbase (running or stopped) and delete_pocketbase_record."""

    def _settle(self, step: str, status: str) -> Outcome:
        """The stack takes its final status and its record is queued, together; then the
        record goes to PocketBase now, or — when PocketBase does not answer — later, from the
        outbox: the stack's status follows Coolify, not PocketBase's availability."""
        stack = Stack.objects.select_related("tenant").get(pk=self.stack.pk)
        entry = settle_stack(stack, status, detail=f"{self.operation} succeeded")
        self.operation.stack = stack
        self._beat()
        delivery = deliver_record(entry.tenant_slug, entry.stack_name, self.pocketbase)
        if delivery.outcome == DeliveryOutcome.DELIVERED:
            if delivery.action == OutboxAction.UPSERT:
                stack.pocketbase_id = delivery.record_id
            return done(delivery.detail) if delivery.changed else already(delivery.detail)
        if delivery.outcome == DeliveryOutcome.NOTHING:  # a drain delivered it just now
            return already("record delivered by the PocketBase outbox")
        if delivery.outcome == DeliveryOutcome.BUSY:
            return deferred("record queued for PocketBase (another worker is delivering it)")
        assert delivery.error is not None
        if delivery.outcome == DeliveryOutcome.DEFERRED and delivery.error.transient:
            return deferred(
                f"record queued for PocketBase, which did not answer ({delivery.error}); "
                "it is retried in the background"
            )
        if delivery.outcome == DeliveryOutcome.REJECTED:
            raise StepFailed(
                step,
                f"PocketBase refused the record: {delivery.error}",
                "Fix what PocketBase names (the agent_stacks collection's fields, e.g. with "
                "`manage.py pocketbase_setup`), then retry the operation.",
            )
        # Credentials or permissions: the record stays queued; an operator must act.
        raise StepFailed(step, str(delivery.error), hint_for(step, delivery.error))

    def sync_pocketbase_running(self) -> Outcome:
        return self._settle("sync_pocketbase", StackStatus.RUNNING)

    def sync_pocketbase_stopped(self) -> Outcome:
        return self._settle("sync_pocketbase", StackStatus.STOPPED)

    def delete_pocketbase_record(self) -> Outcome:
        """The stack becomes a tombstone and its record's deletion is queued, together."""
        return self._settle("delete_pocketbase_record", StackStatus.DELETED)
