"""Operations on a stack (deploy, stop, delete…), their claim by a worker and their steps."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from stacks.choices import (
    IN_FLIGHT_OPERATION_STATUSES,
    OperationKind,
    OperationStatus,
    StepOutcome,
)
from stacks.models.stack import Stack


class OperationQuerySet(models.QuerySet):
    def in_flight(self) -> OperationQuerySet:
        return self.filter(status__in=IN_FLIGHT_OPERATION_STATUSES)

    def latest_of_stacks(self, stack_ids: list[int], *, kinds: Any = ()) -> OperationQuerySet:
        """Each of these stacks' latest operation (of `kinds`, when given), in one query: a
        subquery per stack walks its (stack, requested_at) index to the newest row; no history
        is loaded however long it is."""
        newest = Operation.objects.filter(stack=OuterRef("pk"))
        if kinds:
            newest = newest.filter(kind__in=kinds)
        latest = (
            Stack.objects.filter(pk__in=stack_ids)
            .annotate(latest=Subquery(newest.order_by("-requested_at", "-id").values("pk")[:1]))
            .values("latest")
        )
        return self.filter(pk__in=latest)

    def awaiting_dispatch(self) -> OperationQuerySet:
        """Background operations queued, not handed to a worker yet (stacks.services.dispatch)."""
        return self.filter(
            background=True, dispatched_at__isnull=True, status=OperationStatus.QUEUED
        )

    def background_in_flight(self) -> OperationQuerySet:
        """Background operations handed to a worker and not finished: they hold a slot."""
        return self.filter(
            background=True,
            dispatched_at__isnull=False,
            status__in=IN_FLIGHT_OPERATION_STATUSES,
        )

    def claim(self, pk: int) -> bool:
        """queued → running for exactly one worker: True only where this UPDATE changed the row."""
        now = timezone.now()
        return bool(
            self.filter(pk=pk, status=OperationStatus.QUEUED).update(
                status=OperationStatus.RUNNING,
                started_at=Coalesce(F("started_at"), now),
                heartbeat_at=now,
                attempts=F("attempts") + 1,
            )
        )


class Operation(models.Model):
    """One requested action on a stack. At most one is queued or running per stack (DB-enforced)."""

    stack = models.ForeignKey(Stack, on_delete=models.PROTECT, related_name="operations")
    kind = models.CharField(max_length=32, choices=OperationKind.choices)
    status = models.CharField(
        max_length=16,
        choices=OperationStatus.choices,
        default=OperationStatus.QUEUED,
        db_index=True,
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_by_repr = models.CharField("requested by", max_length=150)
    parameters = models.JSONField(default=dict, blank=True, help_text="Never holds secret values.")
    current_step = models.CharField(max_length=64, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Written at every step: a running operation whose heartbeat stops was orphaned by a
    # worker that died, and is resumed (or failed) by recover_stale_operations.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When its task was last handed to the broker, and how many times since a worker last took
    # it: a queued operation whose task was lost (enqueue failed after commit, a worker died
    # between taking the task and claiming the row) is queued again by recover_stale_operations.
    enqueued_at = models.DateTimeField(default=timezone.now)
    enqueue_count = models.PositiveSmallIntegerField(
        default=1, help_text="Times queued since a worker last took it."
    )
    # Issue 17: a background operation (a rollout's, a bulk action by query) is queued here
    # but handed to the workers by stacks.services.dispatch, a few at a time, so a person's
    # operation (background=False, handed over at once) never waits behind thousands.
    background = models.BooleanField(default=False)
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was handed to the workers."
    )
    # Which of the BACKGROUND_OPERATIONS_IN_FLIGHT places a dispatched background operation
    # holds while in flight: unique among them (a constraint), so dispatchers racing in several
    # workers never hand over more than the cap.
    dispatch_slot = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-id"]
        # A stack's latest operations (its page), the list's default order and its filters.
        indexes = [
            models.Index(
                fields=["stack", "-requested_at", "-id"], name="operation_stack_latest_idx"
            ),
            models.Index(fields=["-requested_at", "-id"], name="operation_latest_idx"),
            # The filters' indexes hold the whole order (with -id): SQLite then walks them
            # rather than the order's index through every row (a status no row has).
            models.Index(
                fields=["status", "-requested_at", "-id"], name="operation_status_order_idx"
            ),
            models.Index(fields=["kind", "-requested_at", "-id"], name="operation_kind_order_idx"),
            models.Index(
                fields=["requested_by_repr"],
                name="operation_requester_idx",
                opclasses=["varchar_pattern_ops"],
            ),
            # The dispatcher's question, oldest first: small (only what waits).
            models.Index(
                fields=["requested_at", "id"],
                condition=Q(
                    background=True, dispatched_at__isnull=True, status=OperationStatus.QUEUED
                ),
                name="operation_undispatched_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["stack"],
                condition=Q(status__in=IN_FLIGHT_OPERATION_STATUSES),
                name="one_operation_in_flight_per_stack",
                violation_error_code="operation_in_flight",
                violation_error_message="Another operation is already queued or running "
                "for this stack.",
            ),
            models.UniqueConstraint(
                fields=["dispatch_slot"],
                condition=Q(dispatch_slot__isnull=False, status__in=IN_FLIGHT_OPERATION_STATUSES),
                name="one_background_operation_per_slot",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    def audit_scope(self) -> tuple[str, str]:
        return self.stack.audit_scope()

    @property
    def is_in_flight(self) -> bool:
        return self.status in IN_FLIGHT_OPERATION_STATUSES

    @property
    def may_skip_unchanged_env(self) -> bool:
        """A background redeploy (a rollout's, a bulk action's) leaves out the envs call when
        the values are the ones last pushed to this service: a template rollout rarely changes
        them, and at 10,000 stacks that call is a third of the Coolify budget (issue 17). The
        service PATCH before it keeps the values: Service::parse() → serviceParser creates a
        `${VAR}` variable with firstOrCreate, never overwriting a saved value
        (bootstrap/helpers/parsers.php). A person's Redeploy always pushes them: it is how an
        env changed by hand in Coolify is put right."""
        return self.background and self.kind == OperationKind.REDEPLOY

    @property
    def can_be_cancelled(self) -> bool:
        """Only a queued operation: a running one is doing remote work that must end itself."""
        return self.status == OperationStatus.QUEUED


class OperationStep(models.Model):
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, choices=StepOutcome.choices)
    detail = models.TextField(blank=True)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["operation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["operation", "position"], name="step_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}: {self.outcome}"
