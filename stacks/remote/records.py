"""The agent_stacks record cfadmin keeps in PocketBase for each stack: one mapping, one place."""

from __future__ import annotations

from typing import Any

from stacks.models import Stack


def pocketbase_record(stack: Stack, status: str) -> dict[str, Any]:
    """The agent_stacks record of a stack: names, uuids, domains. Never a secret."""
    return {
        "tenant": stack.tenant.slug,
        "stack_name": stack.stack_name,
        "template": stack.template_name,
        "status": status,
        "project_uuid": stack.coolify_project_uuid,
        "service_uuid": stack.coolify_service_uuid,
        # .all(): uses a prefetch when the caller made one (reconcile compares every stack)
        "domains": [d.domain for d in stack.domains.all() if d.released_at is None],
        "django_id": stack.pk,
    }
