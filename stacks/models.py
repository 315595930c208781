"""Stacks: one customer's Docker Compose app on Coolify, its domains, secrets and operations."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from cfadmin import encryption
from cfadmin.validators import (
    normalize_domain,
    validate_compose_service_name,
    validate_dns_label,
    validate_env_key,
    validate_env_value,
    validate_single_line_text,
)
from stacks.catalog import template_names, validate_template_name
from stacks.choices import (
    ALLOWED_OPERATIONS,
    IN_FLIGHT_OPERATION_STATUSES,
    STACK_TRANSITIONS,
    OperationKind,
    OperationStatus,
    OutboxAction,
    OutboxState,
    StackStatus,
    StepOutcome,
)
from stacks.compose import Manifest, ServerNames, load_manifest, server_names
from tenants.models import Tenant


def current_template_version(name: str) -> str:
    return load_manifest(name).version


def stack_name_taken_error(owner: Stack) -> ValidationError:
    return ValidationError(
        "A live stack named %(name)s already exists (tenant %(tenant)s); stack names are "
        "unique across the platform because container names are.",
        code="stack_name_taken",
        params={"name": owner.stack_name, "tenant": owner.tenant.slug},
    )


def _manifest_of_parent(child: models.Model) -> Manifest | None:
    """The template manifest of a domain's or secret's stack, if that is known yet."""
    try:
        stack = child.stack
    except ObjectDoesNotExist:
        return None
    if stack is None or stack.template_name not in template_names():
        return None
    return load_manifest(stack.template_name)


class InvalidTransition(Exception):
    """A status change the stack's state machine does not allow."""


class Stack(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="stacks")
    project_name = models.CharField(
        max_length=100,
        validators=[validate_single_line_text],
        help_text="Coolify project that holds the stack, e.g. customer-123-project.",
    )
    stack_name = models.CharField(
        max_length=63,
        validators=[validate_dns_label],
        help_text="DNS label, unique across the platform, e.g. customer-123-main.",
    )
    template_name = models.CharField(max_length=64, validators=[validate_template_name])
    template_version = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=StackStatus.choices, default=StackStatus.PENDING, db_index=True
    )
    status_detail = models.TextField(blank=True, help_text="Why the stack is in this status.")
    coolify_project_uuid = models.CharField("Coolify project uuid", max_length=64, blank=True)
    coolify_service_uuid = models.CharField("Coolify service uuid", max_length=64, blank=True)
    pocketbase_id = models.CharField("PocketBase record id", max_length=32, blank=True)
    # Set just before asking Coolify to create the service: if the answer is lost, the next
    # attempt looks for the service by name instead of creating a second one.
    service_create_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["stack_name", "id"]
        constraints = [
            # Unique platform-wide, not only per tenant: containers are named cf-agent-<stack>
            # and a Docker host has one namespace of container names.
            models.UniqueConstraint(
                fields=["stack_name"],
                condition=~Q(status=StackStatus.DELETED),
                name="stack_name_unique_among_live_stacks",
                violation_error_code="stack_name_taken",
                violation_error_message="A live stack with this name already exists.",
            ),
        ]
        permissions = [
            ("deploy_stack", "Can deploy stacks"),
            ("dry_run_stack", "Can preview a deploy (dry-run)"),
            ("restart_stack", "Can restart stacks"),
            ("stop_stack", "Can stop stacks"),
            ("start_stack", "Can start stacks"),
            ("redeploy_stack", "Can redeploy stacks"),
            ("rotate_stack_secrets", "Can rotate stack secrets"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.stack_name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A new stack records the template version it is made from; deploys update it.
        if not self.template_version and self.template_name in template_names():
            self.template_version = current_template_version(self.template_name)
        super().save(*args, **kwargs)

    def server_names(self, placeholder: str = "") -> ServerNames:
        """Its containers and volumes as Coolify names them on the server (`docker ps`,
        `docker volume ls`); `placeholder` stands for a service uuid it does not have yet."""
        return server_names(
            load_manifest(self.template_name),
            self.tenant.slug,
            self.stack_name,
            self.coolify_service_uuid or placeholder,
        )

    def audit_scope(self) -> tuple[str, str]:
        return self.tenant.slug, self.stack_name

    @classmethod
    def live_named(cls, stack_name: str) -> models.QuerySet[Stack]:
        return (
            cls.objects.filter(stack_name=stack_name)
            .exclude(status=StackStatus.DELETED)
            .select_related("tenant")
        )

    @property
    def template_is_current(self) -> bool:
        return self.template_version == current_template_version(self.template_name)

    def clean(self) -> None:
        # The conditional constraint is the last line of defence; this names the field.
        if self.is_live and self.stack_name:
            owner = Stack.live_named(self.stack_name).exclude(pk=self.pk).first()
            if owner is not None:
                raise ValidationError({"stack_name": stack_name_taken_error(owner)})

    def validate_constraints(self, exclude: Any = None) -> None:
        # clean() reports the live-name rule against its field; skip the generic message.
        super().validate_constraints(exclude={*(exclude or ()), "status"})

    @property
    def is_live(self) -> bool:
        return self.status != StackStatus.DELETED

    def accepts(self, kind: str) -> bool:
        """Whether an operation of this kind makes sense for the stack in its status."""
        return kind in ALLOWED_OPERATIONS[self.status]

    def can_transition(self, to: str) -> bool:
        return to in STACK_TRANSITIONS[self.status]

    def transition_to(self, to: str, *, detail: str = "") -> None:
        """Move to `to` if the machine allows it and nobody moved the row meanwhile.

        A conditional UPDATE, so two workers cannot both make the same move (SQLite has no
        row locks; PITFALLS.md).
        """
        if not self.can_transition(to):
            raise InvalidTransition(f"{self}: cannot go from {self.status} to {to}")
        now = timezone.now()
        fields: dict[str, Any] = {"status": to, "status_detail": detail, "updated_at": now}
        if to == StackStatus.DELETED:
            fields["deleted_at"] = now
        changed = Stack.objects.filter(pk=self.pk, status=self.status).update(**fields)
        if changed != 1:
            raise InvalidTransition(f"{self}: status changed meanwhile (was {self.status})")
        for name, value in fields.items():
            setattr(self, name, value)
        if to == StackStatus.DELETED:
            self.domains.filter(released_at__isnull=True).update(released_at=now)


class StackDomain(models.Model):
    """A compose service's public domain (`--domain webui=demo.customer123.com`).

    A domain belongs to one live stack platform-wide; tombstoning a stack releases its domains.
    """

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="domains")
    service = models.CharField(
        "compose service",
        max_length=63,
        validators=[validate_compose_service_name],
        help_text="The template's exposed service, e.g. webui.",
    )
    domain = models.CharField(
        max_length=253, help_text="Host name only, e.g. demo.customer123.com."
    )
    released_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["service", "domain"]
        constraints = [
            models.UniqueConstraint(
                fields=["domain"],
                condition=Q(released_at__isnull=True),
                name="domain_owned_by_one_live_stack",
                violation_error_code="domain_taken",
                violation_error_message="This domain is already used by another live stack.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service}={self.domain}"

    def clean_fields(self, exclude: Any = None) -> None:
        errors: dict[str, list[ValidationError]] = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if "domain" not in errors and not (exclude and "domain" in exclude):
            try:
                self.domain = normalize_domain(self.domain)
            except ValidationError as error:
                errors.setdefault("domain", []).extend(error.error_list)
        if errors:
            raise ValidationError(errors)

    def clean(self) -> None:
        manifest = _manifest_of_parent(self)
        if manifest is not None and self.service and self.service not in manifest.exposed:
            raise ValidationError(
                {
                    "service": ValidationError(
                        "Template %(template)s exposes no service %(service)r; "
                        "exposed: %(exposed)s.",
                        code="unknown_service",
                        params={
                            "template": manifest.name,
                            "service": self.service,
                            "exposed": ", ".join(manifest.exposed) or "none",
                        },
                    )
                }
            )
        if self.released_at is None and self.domain:
            owner = (
                StackDomain.objects.filter(domain=self.domain, released_at__isnull=True)
                .exclude(pk=self.pk)
                .select_related("stack__tenant")
                .first()
            )
            if owner is not None:
                raise ValidationError(
                    {
                        "domain": ValidationError(
                            "%(domain)s is already used by stack %(owner)s; a domain belongs to "
                            "one live stack.",
                            code="domain_taken",
                            params={"domain": self.domain, "owner": owner.stack},
                        )
                    }
                )

    def validate_constraints(self, exclude: Any = None) -> None:
        # clean() reports the ownership rule naming the owner; skip the generic message.
        super().validate_constraints(exclude={*(exclude or ()), "released_at"})


class StackSecret(models.Model):
    """An env var for the stack's services, encrypted at rest, shown only masked."""

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="secrets")
    key = models.CharField(max_length=128, validators=[validate_env_key])
    value_encrypted = models.TextField(editable=False)
    masked_value = models.CharField("value", max_length=16, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                fields=["stack", "key"],
                name="secret_key_unique_per_stack",
                violation_error_code="secret_key_taken",
                violation_error_message="This stack already has a value for this key.",
            ),
        ]

    def __str__(self) -> str:
        return self.key  # never the value: str() ends up in logs and the admin's history

    def set_value(self, plaintext: str) -> None:
        validate_env_value(plaintext)
        self.value_encrypted = encryption.encrypt(plaintext)
        self.masked_value = encryption.mask(plaintext)

    def reveal(self) -> str:
        """The plaintext, for the provisioning step that pushes it to Coolify. Nowhere else."""
        return encryption.decrypt(self.value_encrypted)

    def clean(self) -> None:
        manifest = _manifest_of_parent(self)
        if manifest is not None and self.key and self.key not in manifest.env_keys:
            raise ValidationError(
                {
                    "key": ValidationError(
                        "Template %(template)s does not use %(key)s; it takes: %(keys)s.",
                        code="unknown_env_key",
                        params={
                            "template": manifest.name,
                            "key": self.key,
                            "keys": ", ".join(manifest.env_keys) or "no env keys",
                        },
                    )
                }
            )


class OperationQuerySet(models.QuerySet):
    def in_flight(self) -> OperationQuerySet:
        return self.filter(status__in=IN_FLIGHT_OPERATION_STATUSES)

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

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stack"],
                condition=Q(status__in=IN_FLIGHT_OPERATION_STATUSES),
                name="one_operation_in_flight_per_stack",
                violation_error_code="operation_in_flight",
                violation_error_message="Another operation is already queued or running "
                "for this stack.",
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


class PocketBaseOutboxQuerySet(models.QuerySet):
    def pending(self) -> PocketBaseOutboxQuerySet:
        return self.filter(state=OutboxState.PENDING)

    def for_record(self, tenant_slug: str, stack_name: str) -> PocketBaseOutboxQuerySet:
        return self.filter(tenant_slug=tenant_slug, stack_name=stack_name)


class PocketBaseOutboxEntry(models.Model):
    """One change of a stack's agent_stacks record, written in the same transaction as the
    change in cfadmin and delivered to PocketBase afterwards, in order (stacks/pocketbase_outbox).

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


class RemoteSnapshot(models.Model):
    """The last answer of a bulk read (e.g. every Coolify service's status), shared by workers.

    Coolify allows 200 calls a minute: one `GET /services` per polling round serves every
    stack in flight in every worker, instead of one call per stack.
    """

    name = models.CharField(max_length=200, primary_key=True)
    data = models.JSONField(default=dict)
    fetched_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class ReconcileRun(models.Model):
    """One comparison of cfadmin with Coolify and PocketBase, and the drift it found."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by_repr = models.CharField("requested by", max_length=150)
    stacks_checked = models.PositiveIntegerField(default=0)
    drift = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, help_text="Why the comparison could not be made.")
    note = models.TextField(blank=True, help_text="What was repaired just before it.")

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [("reconcile_stacks", "Can reconcile, repair drift and import stacks")]

    def __str__(self) -> str:
        return f"Reconcile {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def drift_count(self) -> int:
        return len(self.drift)

    @classmethod
    def latest_finished(cls) -> ReconcileRun | None:
        """The report to act on: the newest comparison that ended (one may be running now)."""
        return cls.objects.filter(finished_at__isnull=False).first()
