"""A stack's public domains, one per exposed service; released ones are kept as history."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from cfadmin.validators import (
    normalize_domain,
    validate_compose_service_name,
)
from stacks.models.stack import Stack, _manifest_of_parent


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
        # Domain search by prefix (PostgreSQL: LIKE 'x%'; a trigram index for substrings is
        # made by migration 0005 on PostgreSQL only).
        indexes = [
            models.Index(
                fields=["domain"], name="domain_prefix_idx", opclasses=["varchar_pattern_ops"]
            ),
        ]
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
