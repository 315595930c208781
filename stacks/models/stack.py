"""The stack: one customer's Docker Compose app on Coolify, and its status machine."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from cfadmin.validators import (
    validate_dns_label,
    validate_single_line_text,
)
from stacks.catalog import template_names, validate_template_name
from stacks.choices import (
    ALLOWED_OPERATIONS,
    STACK_TRANSITIONS,
    Containment,
    StackStatus,
    containment_refusal,
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


ENV_DIGEST_SALT = "cfadmin.stacks.pushed-env"


class InvalidTransition(Exception):
    """A status change the stack's state machine does not allow."""


class StackQuerySet(models.QuerySet):
    def search(self, text: str) -> StackQuerySet:
        """Stacks found by every word of `text` (stacks.models.search): by id, uuid, or the
        beginning of a name, slug or domain, through indexes; when nothing begins so, by
        names and domains that contain the words. No join, no DISTINCT."""
        from stacks.models.search import stack_search_q

        found = self.filter(stack_search_q(text, using=self.db))
        if found.exists():
            return found
        return self.filter(stack_search_q(text, substring=True, using=self.db))

    def live_count_by_template(self) -> dict[str, int]:
        """How many live stacks each template has, in one grouped query."""
        rows = (
            self.exclude(status=StackStatus.DELETED)
            .order_by()
            .values_list("template_name")
            .annotate(n=models.Count("pk"))
        )
        return dict(rows)


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
    # Held out of service on purpose (issue 15): ISOLATE sets it, RELEASE clears it.
    containment = models.CharField(
        max_length=16,
        choices=Containment.choices,
        blank=True,
        default=Containment.NONE,
        db_index=True,
        help_text="Isolated: its domains are off in Coolify and it is stopped, on purpose.",
    )
    contained_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A keyed digest (never the values) of the env last pushed to Coolify: a background
    # redeploy skips the envs call when nothing changed (issue 17). Nullable so that adding it
    # is an ALTER TABLE, not SQLite's table rebuild (which drops the search indexes).
    pushed_env_digest = models.CharField(  # noqa: DJ001 (see above)
        max_length=64, null=True, blank=True, editable=False
    )

    objects = StackQuerySet.as_manager()

    class Meta:
        ordering = ["stack_name", "id"]
        # What the admin's lists filter, sort and search by (issue 13). The pattern_ops ones
        # answer prefix searches on PostgreSQL (LIKE 'x%'); elsewhere they are plain indexes.
        indexes = [
            models.Index(fields=["stack_name", "id"], name="stack_name_order_idx"),
            models.Index(
                fields=["stack_name"],
                name="stack_name_prefix_idx",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(
                fields=["project_name"],
                name="stack_project_prefix_idx",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(fields=["tenant", "status"], name="stack_tenant_status_idx"),
            models.Index(fields=["template_name", "template_version"], name="stack_template_idx"),
            models.Index(fields=["updated_at"], name="stack_updated_idx"),
            models.Index(fields=["created_at"], name="stack_created_idx"),
            models.Index(fields=["coolify_service_uuid"], name="stack_service_uuid_idx"),
            models.Index(fields=["coolify_project_uuid"], name="stack_project_uuid_idx"),
            models.Index(fields=["pocketbase_id"], name="stack_pocketbase_id_idx"),
        ]
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
            ("contain_stack", "Can stop, isolate and release stacks for containment"),
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

    def env_digest(self, values: dict[str, str]) -> str:
        """A keyed digest of the env `values` for this stack's current service: equal only for
        the same values on the same service (a new service must be given them again). Keyed
        with SECRET_KEY, so it tells nothing about the values to whoever reads the database."""
        payload = json.dumps([self.coolify_service_uuid, sorted(values.items())])
        return salted_hmac(ENV_DIGEST_SALT, payload, algorithm="sha256").hexdigest()

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

    @property
    def is_isolated(self) -> bool:
        return self.containment == Containment.ISOLATED

    def containment_refusal(self, kind: str) -> str:
        """Why its containment refuses an operation of this kind ("" when it does not)."""
        return containment_refusal(self.containment, kind)

    def accepts(self, kind: str) -> bool:
        """Whether an operation of this kind makes sense for the stack in its status and its
        containment (an isolated stack starts nothing until released)."""
        return kind in ALLOWED_OPERATIONS[self.status] and not self.containment_refusal(kind)

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
