"""Evidence captured on an incident (issue 15): immutable items, each with the SHA-256 of its
content, who captured it and when. Nothing changes or deletes one through the model or the ORM
layer cfadmin uses (save of an existing row, delete, QuerySet.update/delete/bulk_update)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from ops.models.incidents import Incident
from stacks.models import Stack


class EvidenceImmutable(Exception):
    """Raised on any attempt to change or delete evidence."""


def content_sha256(content: str) -> str:
    """The SHA-256 (64 hex) of the content's UTF-8 bytes."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


class EvidenceKind(models.TextChoices):
    SERVICE = "service", "Coolify service"
    ENV_KEYS = "env_keys", "Env keys"
    LOGS = "logs", "Container logs"
    AUDIT = "audit", "Audit slice"
    TEMPLATE = "template", "Template"
    OPERATIONS = "operations", "Operations"
    SERVER_RESOURCES = "server_resources", "Server resources"


class EvidenceQuerySet(models.QuerySet):
    """Rows are only ever added: update() and delete() refuse."""

    def update(self, **kwargs: Any) -> int:
        raise EvidenceImmutable("Evidence cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise EvidenceImmutable("Evidence cannot be deleted.")

    def bulk_update(self, objs: Any, fields: Any, batch_size: Any = None) -> int:
        raise EvidenceImmutable("Evidence cannot be changed.")

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        for obj in objs:
            obj.sha256 = content_sha256(obj.content)
        return super().bulk_create(objs, *args, **kwargs)

    delete.queryset_only = True  # type: ignore[attr-defined]  (as Django's own)


class EvidenceItem(models.Model):
    """One captured part (a stack's service, env keys, a container's logs…) on an incident."""

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="evidence")
    stack = models.ForeignKey(
        Stack, null=True, blank=True, on_delete=models.PROTECT, related_name="evidence"
    )
    kind = models.CharField(max_length=16, choices=EvidenceKind.choices)
    title = models.CharField(max_length=200)
    content = models.TextField()
    sha256 = models.CharField("SHA-256", max_length=64, editable=False)
    failed = models.BooleanField(
        default=False, help_text="The part could not be captured; the content says why."
    )
    captured_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    captured_by_repr = models.CharField("captured by", max_length=150)
    captured_at = models.DateTimeField(default=timezone.now)

    objects = EvidenceQuerySet.as_manager()

    class Meta:
        ordering = ["captured_at", "id"]
        default_permissions = ("view",)  # nobody is ever given add, change or delete
        # Related-object updates and deletes (a deleted user's SET_NULL, a cascade) go through
        # the base manager: make it the refusing one, so they fail instead of changing evidence.
        base_manager_name = "objects"
        indexes = [models.Index(fields=["incident", "captured_at"], name="ops_evidence_incident")]
        verbose_name = "evidence item"

    def __str__(self) -> str:
        return f"Evidence #{self.pk}: {self.title}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or self.pk is not None:
            raise EvidenceImmutable("Evidence cannot be changed.")
        self.sha256 = content_sha256(self.content)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise EvidenceImmutable("Evidence cannot be deleted.")

    def audit_scope(self) -> tuple[str, str]:
        return self.stack.audit_scope() if self.stack_id else self.incident.audit_scope()

    @property
    def size(self) -> int:
        """The content's size in bytes (UTF-8)."""
        return len(self.content.encode("utf-8"))

    @property
    def hash_matches(self) -> bool:
        """Whether the stored hash is still that of the stored content."""
        return content_sha256(self.content) == self.sha256
