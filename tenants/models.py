from __future__ import annotations

from django.db import models

from cfadmin.validators import validate_dns_label, validate_single_line_text
from tenants.choices import TenantStatus


class RolloutRing(models.TextChoices):
    """Where a tenant's stacks come in a template rollout (issue 17): canary first, high-value
    customers last. ORDER is the rollout order."""

    CANARY = "canary", "Canary"
    STANDARD = "standard", "Standard"
    LAST = "last", "Last (high-value customers)"

    @classmethod
    def order(cls) -> list[str]:
        return [cls.CANARY, cls.STANDARD, cls.LAST]


class Tenant(models.Model):
    """A customer of the platform; its slug prefixes its stacks' resources (customer-123)."""

    slug = models.CharField(
        max_length=63,
        unique=True,
        validators=[validate_dns_label],
        help_text="DNS label used in resource names, e.g. customer-123. Cannot change later.",
        error_messages={"unique": "A tenant with this slug already exists."},
    )
    name = models.CharField(max_length=200, validators=[validate_single_line_text])
    contact_email = models.EmailField(blank=True)
    status = models.CharField(
        max_length=16, choices=TenantStatus.choices, default=TenantStatus.ACTIVE
    )
    notes = models.TextField(blank=True)
    rollout_ring = models.CharField(
        max_length=16,
        choices=RolloutRing.choices,
        default=RolloutRing.STANDARD,
        db_index=True,
        help_text="When its stacks get a new template version: canary first, last ring last.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        # The tenant list's filter and sortable columns (issue 13); slug is unique already.
        indexes = [
            models.Index(fields=["status", "slug"], name="tenant_status_idx"),
            models.Index(fields=["created_at"], name="tenant_created_idx"),
        ]

    def __str__(self) -> str:
        return self.slug

    def audit_scope(self) -> tuple[str, str]:
        return self.slug, ""

    @property
    def is_active(self) -> bool:
        return self.status == TenantStatus.ACTIVE
