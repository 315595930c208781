"""A leaked value's rotation on one stack, from an incident (issue 15): which stack, which keys,
the ROTATE_SECRETS operation that did it, and how it stands."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Case, Q, Value, When

from ops.models.incidents import Incident
from stacks.choices import OperationStatus
from stacks.models import Operation, Stack


class LeakState(models.TextChoices):
    PENDING = "pending", "Waiting"
    RUNNING = "running", "Rotating"
    SUCCEEDED = "succeeded", "Rotated"
    FAILED = "failed", "Failed"


# Where each state comes from: a refusal (`error`), else the operation's status.
_FAILED = Q(error__gt="") | Q(
    operation__status__in=(OperationStatus.FAILED, OperationStatus.CANCELLED)
)
_SUCCEEDED = Q(operation__status=OperationStatus.SUCCEEDED)
_RUNNING = Q(operation__status=OperationStatus.RUNNING)


class LeakRotationQuerySet(models.QuerySet):
    def with_state(self) -> LeakRotationQuerySet:
        """Each row's `state_value` (a LeakState) computed by the database, for counts."""
        return self.annotate(
            state_value=Case(
                When(_FAILED, then=Value(LeakState.FAILED)),
                When(_SUCCEEDED, then=Value(LeakState.SUCCEEDED)),
                When(_RUNNING, then=Value(LeakState.RUNNING)),
                default=Value(LeakState.PENDING),
                output_field=models.CharField(),
            )
        )

    def failed(self) -> LeakRotationQuerySet:
        return self.filter(_FAILED)

    def waiting(self) -> LeakRotationQuerySet:
        """Not queued yet and not refused: what the next batches take."""
        return self.filter(operation__isnull=True, error="")

    def in_flight(self) -> LeakRotationQuerySet:
        return self.filter(
            operation__status__in=(OperationStatus.QUEUED, OperationStatus.RUNNING), error=""
        )


class LeakRotation(models.Model):
    """One stack's rotation of a leaked value (all its keys that held it, in one operation).

    The new value waits here encrypted (cfadmin.encryption, like StackSecret) until its batch is
    queued; then it is stored on the stack's secret and cleared here. Plaintext never is."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="leak_rotations")
    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="leak_rotations")
    key = models.CharField(max_length=255, help_text="The env key(s) that held the value.")
    new_value_encrypted = models.TextField(blank=True, editable=False)
    operation = models.ForeignKey(
        Operation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    batch = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why it could not be queued.")
    noted_at = models.DateTimeField(null=True, blank=True)  # its outcome is on the timeline
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_repr = models.CharField(max_length=150, blank=True)

    objects = LeakRotationQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["incident", "operation"], name="ops_leak_incident_op")]

    def __str__(self) -> str:
        return f"{self.stack_id}: {self.key}"  # never a value

    @property
    def keys(self) -> list[str]:
        return self.key.split(",") if self.key else []

    @property
    def state(self) -> str:
        """ "pending", "running", "succeeded" or "failed" (LeakState)."""
        if self.error:
            return LeakState.FAILED
        if self.operation_id is None:
            return LeakState.PENDING
        status = self.operation.status
        if status in (OperationStatus.FAILED, OperationStatus.CANCELLED):
            return LeakState.FAILED
        if status == OperationStatus.SUCCEEDED:
            return LeakState.SUCCEEDED
        if status == OperationStatus.RUNNING:
            return LeakState.RUNNING
        return LeakState.PENDING

    @property
    def state_label(self) -> str:
        return LeakState(self.state).label
