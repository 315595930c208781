"""The one writer of the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from cfadmin.encryption import MASK
from cfadmin.models import AuditAction, AuditEvent
from cfadmin.security import request_context

# Fields never copied into the trail, whatever model they are on.
SECRET_FIELD_NAMES = frozenset({"value_encrypted", "password"})
# Bookkeeping that changes on every save and says nothing about what changed.
IGNORED_IN_DIFF = frozenset({"updated_at"})


def actor_label(actor: Any) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return actor.get_username() or f"user #{actor.pk}"


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The object's concrete field values as JSON-safe data, secrets masked."""
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in SECRET_FIELD_NAMES:
            data[field.name] = MASK
            continue
        value = field.value_from_object(obj)
        data[field.attname if field.is_relation else field.name] = (
            value
            if isinstance(value, (str, int, float, bool, type(None), list, dict))
            else str(value)
        )
    return data


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for the fields that changed."""
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if key not in IGNORED_IN_DIFF and before.get(key) != after.get(key)
    }


def record(
    *,
    actor: Any,
    action: str | AuditAction,
    target: models.Model | None = None,
    message: str = "",
    changes: dict[str, Any] | None = None,
    tenant_slug: str = "",
    stack_name: str = "",
    address: str | None = None,
    user_agent: str | None = None,
) -> AuditEvent:
    """Append one event. `actor` is a user, a label such as 'cli:root', or None for the system.

    `address` and `user_agent` default to those of the request being served, if any.
    """
    origin = request_context.current_origin()
    address = origin.address if address is None else address
    user_agent = origin.user_agent if user_agent is None else user_agent
    target_type = ContentType.objects.get_for_model(target) if target is not None else None
    if target is not None and hasattr(target, "audit_scope"):
        scope_tenant, scope_stack = target.audit_scope()
        tenant_slug = tenant_slug or scope_tenant
        stack_name = stack_name or scope_stack
    return AuditEvent.objects.create(
        actor=actor if isinstance(actor, models.Model) else None,
        actor_repr=actor_label(actor)[:150],
        action=str(action),
        target_type=target_type,
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        tenant_slug=tenant_slug,
        stack_name=stack_name,
        message=message,
        changes=changes or {},
        address=address or None,
        user_agent=user_agent[:255],
    )
