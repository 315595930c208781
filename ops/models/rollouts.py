"""Template rollouts (issue 17): a rollout of one template version to a set of stacks, in
waves ring by ring, each wave gated on its stacks' health and validation (ops/rollouts/engine.py
moves them; these models answer what a status allows)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from stacks.choices import IN_FLIGHT_OPERATION_STATUSES
from stacks.models import Operation, Stack
from tenants.models import RolloutRing


class RolloutStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    HALTED = "halted", "Halted"
    CANCELLED = "cancelled", "Cancelled"
    COMPLETED = "completed", "Completed"


class WaveStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"


class RolloutStackStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DEPLOYING = "deploying", "Deploying"
    VERIFYING = "verifying", "Verifying"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"


class RolloutAction(models.TextChoices):
    """What an operator (or the engine: HALT) does to a rollout; the audit log's action suffix."""

    CREATE = "create", "Create"
    START = "start", "Start"
    PAUSE = "pause", "Pause"
    RESUME = "resume", "Resume"
    CANCEL = "cancel", "Cancel"
    HALT = "halt", "Halt"
    ROLLBACK = "rollback", "Roll back wave"
    COMPLETE = "complete", "Complete"


# The rollout statuses each action may start from. Resuming a halted rollout also needs its
# failed wave rolled back first (Rollout.can).
ACTION_FROM: dict[str, frozenset[str]] = {
    RolloutAction.START: frozenset({RolloutStatus.DRAFT}),
    RolloutAction.PAUSE: frozenset({RolloutStatus.RUNNING}),
    RolloutAction.RESUME: frozenset({RolloutStatus.PAUSED, RolloutStatus.HALTED}),
    RolloutAction.CANCEL: frozenset(
        {RolloutStatus.DRAFT, RolloutStatus.RUNNING, RolloutStatus.PAUSED, RolloutStatus.HALTED}
    ),
    RolloutAction.HALT: frozenset({RolloutStatus.RUNNING, RolloutStatus.PAUSED}),
    RolloutAction.COMPLETE: frozenset({RolloutStatus.RUNNING}),
}
FINISHED_ROLLOUT_STATES = (RolloutStatus.CANCELLED, RolloutStatus.COMPLETED)
# Rollout stacks whose redeploy is requested and not yet judged.
ACTIVE_STACK_STATES = (RolloutStackStatus.DEPLOYING, RolloutStackStatus.VERIFYING)
# A stack whose redeploy began (and may have changed it): what a rollback redeploys.
CHANGED_STATES = (
    RolloutStackStatus.PASSED,
    RolloutStackStatus.VERIFYING,
    RolloutStackStatus.FAILED,
)


class Rollout(models.Model):
    """One template version rolled out to the stacks a query found, in gated waves."""

    template_name = models.CharField(max_length=64)
    to_version = models.CharField(max_length=64)
    from_versions = models.JSONField(
        default=list, blank=True, help_text="The versions its stacks ran when it was created."
    )
    status = models.CharField(
        max_length=16, choices=RolloutStatus.choices, default=RolloutStatus.DRAFT
    )
    status_detail = models.TextField(blank=True, help_text="Why it halted, paused or ended.")
    wave_sizes = models.JSONField(default=list, help_text='Per ring, e.g. ["1", "5%", "rest"].')
    soak_minutes = models.PositiveIntegerField(default=30)
    require_validation = models.BooleanField(default=True)
    filters = models.JSONField(default=dict, blank=True, help_text="The stack query it came from.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="rollout_status_idx")]
        permissions = [
            ("run_rollout", "Can start, pause, resume, cancel and roll back template rollouts"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.template_name} → {self.to_version}"

    def audit_scope(self) -> tuple[str, str]:
        return "", ""

    def can(self, action: str) -> bool:
        """Whether its status allows this action now (a halted rollout resumes only once no
        wave is failed and not rolled back)."""
        if self.status not in ACTION_FROM.get(action, frozenset()):
            return False
        if action == RolloutAction.RESUME and self.status == RolloutStatus.HALTED:
            return not self.waves.filter(status=WaveStatus.FAILED).exists()
        return True

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_ROLLOUT_STATES


class RolloutWave(models.Model):
    """A slice of one ring's stacks, deployed together and gated before the next."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="waves")
    number = models.PositiveIntegerField()
    ring = models.CharField(max_length=16, choices=RolloutRing.choices)
    size = models.CharField(max_length=16, blank=True, help_text='The size it came from: "5%".')
    status = models.CharField(max_length=16, choices=WaveStatus.choices, default=WaveStatus.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rollout", "number"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "number"], name="rollout_wave_unique")
        ]

    def __str__(self) -> str:
        return f"wave {self.number} ({self.get_ring_display()})"

    def can_roll_back(self) -> bool:
        """A failed wave rolls back once none of its redeploys, and no earlier rollback of it,
        is still in flight."""
        if self.status != WaveStatus.FAILED:
            return False
        in_flight = models.Q(status=RolloutStackStatus.DEPLOYING) | models.Q(
            rollback_operation__status__in=IN_FLIGHT_OPERATION_STATUSES
        )
        return not self.stacks.filter(in_flight).exists()


class RolloutStack(models.Model):
    """One stack in a rollout: the version it ran before, the redeploy, and its rollback."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="stacks")
    wave = models.ForeignKey(RolloutWave, on_delete=models.CASCADE, related_name="stacks")
    stack = models.ForeignKey(Stack, on_delete=models.PROTECT, related_name="rollout_entries")
    from_version = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=RolloutStackStatus.choices, default=RolloutStackStatus.PENDING
    )
    operation = models.ForeignKey(
        Operation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rollback_operation = models.ForeignKey(
        Operation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rollout", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "stack"], name="rollout_stack_unique")
        ]
        indexes = [models.Index(fields=["wave", "status"], name="rollout_stack_wave_idx")]

    def __str__(self) -> str:
        return f"{self.stack} ({self.get_status_display()})"
