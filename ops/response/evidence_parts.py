"""What one evidence capture reads of a stack, part by part: each part function returns the
texts to store (title, content), or raises when the part cannot be read. No model writes here."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from cfadmin.models import AuditEvent
from stacks.models import Operation, Stack, current_template_version

EVIDENCE_DAYS = 7  # the audit slice and the operations cover this many days back

# What a capture keeps of each application/database of GET /services/{uuid}.
SUB_FIELDS = ("name", "human_name", "status", "image", "fqdn", "exclude_from_status")


def since() -> datetime:
    return timezone.now() - timedelta(days=EVIDENCE_DAYS)


def stamp(moment: datetime | None) -> str:
    return timezone.localtime(moment).isoformat(timespec="seconds") if moment else "-"


def service_text(service: dict[str, Any]) -> str:
    """The service as Coolify reports it: status, applications, databases, and the compose when
    the token may read it. Coolify 4.3.11 app/Http/Controllers/Api/ServicesController.php
    (removeSensitiveData) leaves docker_compose_raw/docker_compose out of GET /services/{uuid}
    unless the token has root or read:sensitive; the simulator does the same."""
    summary = {
        "uuid": service.get("uuid"),
        "name": service.get("name"),
        "status": service.get("status"),
        "server_status": service.get("server_status"),
        "applications": [sub_summary(app) for app in service.get("applications") or []],
        "databases": [sub_summary(db) for db in service.get("databases") or []],
    }
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    compose = service.get("docker_compose_raw")
    if compose is None:
        return text + "\n\n# compose: not readable (the token lacks read:sensitive)\n"
    return text + "\n\n# compose (docker_compose_raw)\n" + str(compose)


def sub_summary(sub: dict[str, Any]) -> dict[str, Any]:
    return {field: sub[field] for field in SUB_FIELDS if field in sub}


def container_names(service: dict[str, Any]) -> list[str]:
    """The sub-service names the logs endpoint takes: `name` of each application and database
    (Coolify's openapi.yaml, GET /services/{uuid}/logs `sub_service_name`)."""
    subs = [*(service.get("applications") or []), *(service.get("databases") or [])]
    return [str(sub["name"]) for sub in subs if sub.get("name")]


def env_keys_text(envs: list[dict[str, Any]]) -> str:
    """Key names only: values (`value`, `real_value`, present with read:sensitive) are never
    read into the evidence."""
    keys = sorted({str(env.get("key", "")) for env in envs if env.get("key")})
    return "\n".join(keys) + ("\n" if keys else "(no env keys)\n")


def audit_text(stack: Stack) -> str:
    """The stack's audit slice: events with its tenant slug and stack name, last 7 days."""
    events = AuditEvent.objects.filter(
        tenant_slug=stack.tenant.slug, stack_name=stack.stack_name, occurred_at__gte=since()
    ).order_by("occurred_at", "id")
    lines = [
        "\t".join(
            (
                stamp(event.occurred_at),
                event.actor_repr,
                event.action,
                event.target_repr,
                event.message.replace("\n", " "),
            )
        )
        for event in events
    ]
    return "\n".join(lines) + "\n" if lines else f"(no audit events in {EVIDENCE_DAYS} days)\n"


def template_text(stack: Stack) -> str:
    try:
        current = current_template_version(stack.template_name)
    except Exception as error:  # a template gone from the catalog: say so, keep the rest
        current = f"unknown ({type(error).__name__})"
    return (
        f"template: {stack.template_name}\n"
        f"version: {stack.template_version or '-'}\n"
        f"current version of the template: {current}\n"
    )


def operations_text(stack: Stack) -> str:
    """The stack's operations of the last 7 days: kind, status, who, when, error."""
    rows = Operation.objects.filter(stack=stack, requested_at__gte=since()).order_by(
        "requested_at", "id"
    )
    lines = [
        "\t".join(
            (
                f"#{op.pk}",
                op.kind,
                op.status,
                op.requested_by_repr,
                stamp(op.requested_at),
                stamp(op.finished_at),
                op.error.replace("\n", " ") if op.error else "",
            )
        )
        for op in rows
    ]
    header = "id\tkind\tstatus\tby\trequested\tfinished\terror\n"
    return header + ("\n".join(lines) + "\n" if lines else f"(none in {EVIDENCE_DAYS} days)\n")


def log_lines() -> int:
    return int(getattr(settings, "EVIDENCE_LOG_LINES", 200))


def scrub(text: str, secrets: dict[str, str]) -> str:
    """`text` with each of the stack's secret values replaced by the name of its key (longest
    values first, so a value inside another is not left half-replaced)."""
    for key, value in sorted(secrets.items(), key=lambda item: -len(item[1])):
        if value:
            text = text.replace(value, f"[secret {key}]")
    return text
