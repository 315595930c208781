"""Capturing evidence: `request_capture` (timeline, audit, a queued job) and the job that reads
each stack from Coolify and cfadmin and stores one immutable EvidenceItem per part. A part that
cannot be read becomes an item saying what failed; secrets never enter any item."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model

from cfadmin import audit, jobs
from cfadmin.models import AuditAction
from ops import incidents
from ops.models import Incident, IncidentEventKind
from ops.models.evidence import EvidenceItem, EvidenceKind
from ops.response import evidence_parts as parts
from stacks.clients.errors import ClientError
from stacks.models import Stack

JOB = "ops.response.evidence_capture.capture_job"


def request_capture(incident: Incident, stacks: Iterable[Stack], *, actor: Any) -> None:
    """Queue a capture of `stacks` onto `incident` (run by the worker, after commit). `actor` is
    a user, or a label such as "system (isolate #12)" for an automatic capture."""
    chosen = list(stacks)
    if not chosen:
        return
    names = ", ".join(stack.stack_name for stack in chosen)
    requested = incidents.log_action(
        incident, IncidentEventKind.EVIDENCE, f"Evidence capture requested: {names}.", actor=actor
    )
    actor_id = actor.pk if hasattr(actor, "pk") else None
    label = audit.actor_label(actor)
    jobs.enqueue(
        JOB,
        incident.pk,
        [stack.pk for stack in chosen],
        actor_id,
        label,
        requested.at.isoformat(),
        task_name=f"evidence-{incident.pk}",
    )


def capture_job(
    incident_id: int,
    stack_ids: list[int],
    actor_id: int | None,
    actor_label: str,
    requested_at: str = "",
    *,
    coolify: Any = None,
) -> int:
    """The worker's part: capture every stack, then say so on the timeline and in the audit
    trail. Returns the number of items stored. `coolify` is for tests (default: settings').
    Delivery is at least once: the parts of a stack already captured on the incident since
    `requested_at` (a run of this job that stopped midway, or a later request) are not
    captured again; the rest are."""
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return 0
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    by = actor or actor_label
    client = coolify
    if client is None:
        client = settings_coolify()
    stored = 0
    try:
        for stack in Stack.objects.select_related("tenant").filter(pk__in=stack_ids):
            done = captured_since(incident, stack, requested_at) if requested_at else set()
            kinds = STACK_PARTS - done
            if kinds:
                stored += len(capture_and_report(incident, stack, client, actor=by, kinds=kinds))
    finally:
        if coolify is None and hasattr(client, "close"):
            client.close()
    return stored


def capture_and_report(
    incident: Incident,
    stack: Stack,
    coolify: Any,
    *,
    actor: Any,
    kinds: frozenset[str] | None = None,
) -> list[Any]:
    """Capture one stack (only `kinds` when given), then a timeline line and an audit event
    saying how many items, and which failed. In the worker only: it calls Coolify."""
    items = capture_stack(incident, stack, coolify, actor=actor, kinds=kinds)
    failed = [item.title for item in items if item.failed]
    summary = f"Evidence captured for {stack.stack_name}: {len(items)} items" + (
        f" ({len(failed)} failed: {'; '.join(failed)})." if failed else "."
    )
    incidents.add_event(incident, IncidentEventKind.EVIDENCE, summary, actor=actor)
    audit.record(
        actor=actor,
        action=AuditAction.CREATE,
        target=incident,
        message=summary,
        tenant_slug=stack.tenant.slug,
        stack_name=stack.stack_name,
    )
    return items


# The parts captured of a stack (a mass failure's server resources are the incident's own).
STACK_PARTS = frozenset(EvidenceKind.values) - {EvidenceKind.SERVER_RESOURCES}


def captured_since(incident: Incident, stack: Stack, moment: str) -> set[str]:
    """The kinds of the stack's parts captured on the incident since `moment`."""
    return set(
        EvidenceItem.objects.filter(
            incident=incident, stack=stack, captured_at__gte=datetime.fromisoformat(moment)
        ).values_list("kind", flat=True)
    )


def settings_coolify(**options: Any) -> Any:
    """Settings' Coolify client (`options`: timeout, attempts), or one whose every call fails
    when none can be built."""
    from stacks.remote.clients import get_coolify

    try:
        return get_coolify(**options)
    except ClientError as error:
        return _Unreachable(str(error))


class _Unreachable:
    """Stands in for a Coolify client that cannot be built (COOLIFY_URL unset): every call
    fails, so each remote part becomes a failed item."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ClientError(self.reason, service="Coolify")

        return fail


def capture_stack(
    incident: Incident,
    stack: Stack,
    coolify: Any,
    *,
    actor: Any,
    kinds: frozenset[str] | None = None,
) -> list[Any]:
    """Every part of one stack (or those of `kinds`), each stored as an item scrubbed of the
    stack's secrets."""
    secrets = {secret.key: secret.reveal() for secret in stack.secrets.all()}
    items: list[EvidenceItem] = []

    def store(kind: str, title: str, read: Callable[[], str]) -> None:
        if kinds is not None and kind not in kinds:
            return
        try:
            content, failed = read(), False
        except Exception as error:  # any failure becomes an item, never a crash
            content, failed = f"Could not capture {title}: {failure_text(error)}\n", True
        item = EvidenceItem(
            incident=incident,
            stack=stack,
            kind=kind,
            title=title + (" (failed)" if failed else ""),
            content=parts.scrub(content, secrets),
            failed=failed,
            captured_by=actor if hasattr(actor, "pk") else None,
            captured_by_repr=audit.actor_label(actor)[:150],
        )
        item.save()
        items.append(item)

    uuid = stack.coolify_service_uuid
    found: dict[str, Any] = {}

    def service() -> str:  # read first: the logs need its container names
        found.update(coolify.get_service(require(uuid)))
        return parts.service_text(found)

    store(EvidenceKind.SERVICE, f"Coolify service of {stack.stack_name}", service)
    store(
        EvidenceKind.ENV_KEYS,
        f"Env keys of {stack.stack_name}",
        lambda: parts.env_keys_text(coolify.list_service_envs(require(uuid))),
    )
    names = parts.container_names(found)
    if not names:
        store(EvidenceKind.LOGS, f"Logs of {stack.stack_name}", lambda: no_containers(found))
    for name in names:
        store(
            EvidenceKind.LOGS,
            f"Logs of {stack.stack_name} / {name} (last {parts.log_lines()} lines)",
            lambda name=name: coolify.service_logs(uuid, name, lines=parts.log_lines()) or "\n",
        )
    store(EvidenceKind.AUDIT, f"Audit trail of {stack.stack_name}", lambda: parts.audit_text(stack))
    store(
        EvidenceKind.TEMPLATE, f"Template of {stack.stack_name}", lambda: parts.template_text(stack)
    )
    store(
        EvidenceKind.OPERATIONS,
        f"Operations of {stack.stack_name}",
        lambda: parts.operations_text(stack),
    )
    return items


def require(uuid: str) -> str:
    if not uuid:
        raise LookupError("the stack has no Coolify service (never deployed, or deleted)")
    return uuid


def no_containers(service: dict[str, Any]) -> str:
    reason = "the service could not be read" if not service else "Coolify lists no containers"
    raise LookupError(f"no container to read logs from ({reason})")


def failure_text(error: Exception) -> str:
    """What failed, for the item: a client error's own text (it carries the remote's message,
    never a request body: stacks/clients/errors.py), else the error's type and message."""
    if isinstance(error, ClientError):
        return str(error)
    return f"{type(error).__name__}: {error}"
