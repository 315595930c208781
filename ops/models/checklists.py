"""Checklist runs of a procedure and their items (one per step), with who settled what."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from ops.models.procedures import Procedure, ProcedureStep
from stacks.models import Stack
from tenants.models import Tenant


class RunStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"


class ChecklistRun(models.Model):
    """One run of a procedure, optionally for a tenant, a stack or an incident."""

    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="runs")
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="checklist_runs"
    )
    stack = models.ForeignKey(
        Stack, null=True, blank=True, on_delete=models.SET_NULL, related_name="checklist_runs"
    )
    incident = models.ForeignKey(
        "Incident",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="checklist_runs",
    )
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.OPEN, db_index=True
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_repr = models.CharField("started by", max_length=150)
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        subject = (
            self.stack
            or self.tenant
            or (f"incident #{self.incident_id}" if self.incident_id else "")
        )
        return f"{self.procedure.title}{f' — {subject}' if subject else ''} #{self.pk}"

    def audit_scope(self) -> tuple[str, str]:
        if self.stack_id:
            return self.stack.audit_scope()
        return (self.tenant.slug if self.tenant_id else ""), ""

    @property
    def is_completed(self) -> bool:
        return self.status == RunStatus.COMPLETED

    @property
    def progress(self) -> tuple[int, int]:
        items = list(self.items.all())
        return sum(item.is_settled for item in items), len(items)


class ItemState(models.TextChoices):
    PENDING = "pending", "To do"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    PASSED = "passed", "Verified automatically"
    FAILED = "failed", "Automatic check failed"
    OVERRIDDEN = "overridden", "Overridden by a person"


SETTLED_STATES = (ItemState.DONE, ItemState.SKIPPED, ItemState.PASSED, ItemState.OVERRIDDEN)


class ChecklistItem(models.Model):
    run = models.ForeignKey(ChecklistRun, on_delete=models.CASCADE, related_name="items")
    step = models.ForeignKey(ProcedureStep, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=ItemState.choices, default=ItemState.PENDING)
    note = models.TextField(blank=True, help_text="What you saw, or why it was skipped.")
    evidence = models.JSONField(default=dict, blank=True, help_text="The automatic probe's output.")
    settled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    settled_by_repr = models.CharField("by", max_length=150, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "step__position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step"], name="one_item_per_step"),
        ]

    def __str__(self) -> str:
        return f"{self.step.text}: {self.get_state_display()}"

    @property
    def is_pending(self) -> bool:
        return self.state == ItemState.PENDING

    @property
    def is_failed(self) -> bool:
        return self.state == ItemState.FAILED

    @property
    def is_settled(self) -> bool:
        return self.state in SETTLED_STATES

    def audit_scope(self) -> tuple[str, str]:
        return self.run.audit_scope()
