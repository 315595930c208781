"""Tenants as the stacks app meets them: created on a first deploy, and their stack listing."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from cfadmin import audit
from cfadmin.integrity import broken_unique_rule
from cfadmin.models import AuditAction
from stacks.choices import StackStatus
from stacks.models import Stack
from tenants.models import Tenant


def create_tenant(
    slug: str,
    *,
    actor: Any,
    reason: str = "Created by a deploy for a tenant cfadmin did not know yet",
) -> Tenant:
    """A tenant cfadmin meets for the first time (named by its slug); ValidationError if the
    slug is not valid or taken — also when another request created it a moment ago."""
    tenant = Tenant(slug=slug, name=slug)
    tenant.full_clean()
    try:
        with transaction.atomic():
            tenant.save()
    except IntegrityError as error:
        rule = broken_unique_rule(error, Tenant)
        if rule is None:
            raise
        raise ValidationError({"slug": ValidationError(rule.message, code=rule.code)}) from None
    audit.record(
        actor=actor,
        action=AuditAction.CREATE,
        target=tenant,
        message=reason,
        changes={"after": audit.snapshot(tenant)},
    )
    return tenant


def tenant_stack_listing(tenant: Tenant) -> dict[str, Any]:
    """The runbook's `list --tenant` JSON: the tenant's live stacks, oldest first."""
    stacks = (
        Stack.objects.filter(tenant=tenant)
        .exclude(status=StackStatus.DELETED)
        .order_by("created_at", "id")
    )
    return {
        "tenant": tenant.slug,
        "total": len(stacks),
        "stacks": [
            {
                "id": stack.pocketbase_id or None,
                "stack_name": stack.stack_name,
                "template": stack.template_name,
                "status": stack.status,
                "created": stack.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for stack in stacks
        ],
    }
