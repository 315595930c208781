"""The PocketBase outbox rows: each change of a stack's record, written with the change."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from stacks.choices import (
    OutboxAction,
    OutboxState,
)
from stacks.models.stack import Stack


class PocketBaseOutboxQuerySet(models.QuerySet):
    def pending(self) -> PocketBaseOutboxQuerySet:
        return self.filter(state=OutboxState.PENDING)

    def for_record(self, tenant_slug: str, stack_name: str) -> PocketBaseOutboxQuerySet:
        return self.filter(tenant_slug=tenant_slug, stack_name=stack_name)


class PocketBaseOutboxEntry(models.Model):
    """One change of a stack's agent_stacks record, written in the same transaction as the
    change in cfadmin and delivered to PocketBase afterwards, in order (stacks/remote/outbox.py).

    It carries everything the write needs (the record, its key), so it survives the stack being
    tombstoned; the primary key is the sequence. Never holds a secret (records never do).
    """

    stack = models.ForeignKey(
        Stack,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pocketbase_outbox",
    )
    # The record's key in PocketBase (unique index on tenant, stack_name).
    tenant_slug = models.CharField("tenant", max_length=63)
    stack_name = models.CharField("stack", max_length=63)
    action = models.CharField(max_length=16, choices=OutboxAction.choices)
    record = models.JSONField(default=dict, blank=True, help_text="The record to write.")
    record_id = models.CharField("PocketBase record id", max_length=32, blank=True)
    state = models.CharField(
        max_length=16, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # A drain delivering this record holds its pending entries until `leased_until`, so two
    # workers never write one record's states out of order.
    lease_token = models.CharField(max_length=32, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)

    objects = PocketBaseOutboxQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = "PocketBase outbox entry"
        verbose_name_plural = "PocketBase outbox entries"
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["tenant_slug", "stack_name", "state"], name="outbox_record"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.tenant_slug}/{self.stack_name} ({self.state})"

    @property
    def key(self) -> tuple[str, str]:
        return self.tenant_slug, self.stack_name
