"""Workflows over several stack rows: requesting operations, key rotation. Each one audits."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from cfadmin import audit, encryption
from cfadmin.jobs import enqueue
from cfadmin.models import AuditAction
from cfadmin.validators import normalize_domain
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.compose import load_manifest
from stacks.models import Operation, Stack, StackDomain, StackSecret
from stacks.plan import DeployRequest, FieldError, check_env, validate_deploy_request
from tenants.models import Tenant


class OperationRefused(Exception):
    """The stack cannot take this operation now; `code` says why (for JSON and messages)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def enqueue_operation(operation_id: int) -> None:
    """Queue the operation's run after the current transaction commits."""
    enqueue(
        "stacks.tasks.run_operation_task",
        operation_id,
        task_name=f"operation-{operation_id}",
        timeout=settings.Q_CLUSTER["timeout"],
    )


def request_operation(
    stack: Stack,
    kind: str,
    *,
    actor: Any,
    parameters: dict[str, Any] | None = None,
) -> Operation:
    """Queue one operation on a stack, after the current transaction commits.

    At most one operation per stack is queued or running (a database constraint), so two
    clicks or two shells never start two deploys. Parameters must never hold secret values.
    """
    if not stack.accepts(kind):
        raise OperationRefused(
            "not_allowed",
            f"{stack} is {stack.get_status_display().lower()}: it does not accept {kind}.",
        )
    try:
        with transaction.atomic():
            operation = Operation.objects.create(
                stack=stack,
                kind=kind,
                status=OperationStatus.QUEUED,
                requested_by=actor if hasattr(actor, "pk") else None,
                requested_by_repr=audit.actor_label(actor)[:150],
                parameters=parameters or {},
            )
    except IntegrityError:
        raise OperationRefused(
            "operation_in_flight",
            f"{stack} already has an operation queued or running; wait for it to finish.",
        ) from None
    audit.record(
        actor=actor,
        action=AuditAction.OPERATION,
        target=operation,
        message=f"{operation.get_kind_display()} requested",
        changes={"parameters": parameters or {}},
    )
    enqueue_operation(operation.pk)
    return operation


class DeployRefused(Exception):
    """A deploy request with problems; `errors` names each field and rule."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def deploy_stack(request: DeployRequest, *, actor: Any) -> Operation:
    """Create the stack from a deploy request (the runbook's flags) and queue its deploy.

    Asking again for a stack that exists but never reached `running` (pending, deploying or
    error) resumes it, as the runbook's "re-run the provisioner" did; the flags must agree with
    it, and env values given replace the stored ones.
    """
    existing = (
        Stack.live_named(request.stack_name).filter(tenant__slug=request.tenant).first()
        if request.stack_name
        else None
    )
    if existing is not None and existing.accepts(OperationKind.DEPLOY):
        return _resume_deploy(existing, request, actor=actor)
    errors, cleaned = validate_deploy_request(request)
    if errors:
        raise DeployRefused(errors)
    manifest = cleaned["manifest"]
    with transaction.atomic():
        tenant = cleaned["tenant"] or create_tenant(request.tenant, actor=actor)
        stack = Stack.objects.create(
            tenant=tenant,
            project_name=cleaned["project_name"],
            stack_name=request.stack_name,
            template_name=manifest.name,
            template_version=manifest.version,
        )
        for service, domain in cleaned["domains"]:
            StackDomain.objects.create(stack=stack, service=service, domain=domain)
        _store_secrets(stack, request.env)
        audit.record(
            actor=actor,
            action=AuditAction.CREATE,
            target=stack,
            message="Created for a deploy",
            changes={
                "after": audit.snapshot(stack),
                "domains": cleaned["domains"],
                "env_keys": sorted(request.env),
            },
        )
        return request_operation(
            stack, OperationKind.DEPLOY, actor=actor, parameters=_deploy_parameters(stack, request)
        )


def create_tenant(
    slug: str,
    *,
    actor: Any,
    reason: str = "Created by a deploy for a tenant cfadmin did not know yet",
) -> Tenant:
    """A tenant cfadmin meets for the first time (named by its slug); ValidationError if the
    slug is not valid."""
    tenant = Tenant(slug=slug, name=slug)
    tenant.full_clean()
    tenant.save()
    audit.record(
        actor=actor,
        action=AuditAction.CREATE,
        target=tenant,
        message=reason,
        changes={"after": audit.snapshot(tenant)},
    )
    return tenant


def _deploy_parameters(stack: Stack, request: DeployRequest) -> dict[str, Any]:
    return {
        "template": stack.template_name,
        "template_version": stack.template_version,
        "project_name": stack.project_name,
        "domains": [f"{s}={d}" for s, d in request.domains],
        "env_keys": sorted(request.env),
    }  # keys only: values are secrets


def _store_secrets(stack: Stack, values: dict[str, str]) -> None:
    for key, value in values.items():
        secret = StackSecret.objects.filter(stack=stack, key=key).first() or StackSecret(
            stack=stack, key=key
        )
        secret.set_value(value)
        secret.full_clean()
        secret.save()


def _resume_deploy(stack: Stack, request: DeployRequest, *, actor: Any) -> Operation:
    problems = []
    if request.template != stack.template_name:
        problems.append(("template", f"the stack uses {stack.template_name}"))
    if request.project_name != stack.project_name:
        problems.append(("project_name", f"the stack is in project {stack.project_name}"))
    live = set(stack.domains.filter(released_at__isnull=True).values_list("service", "domain"))
    try:
        wanted = {(service, normalize_domain(domain)) for service, domain in request.domains}
    except ValidationError:
        wanted = set(request.domains)
    if wanted != live:
        problems.append(
            (
                "domain",
                "the stack has other domains: " + ", ".join(f"{s}={d}" for s, d in sorted(live)),
            )
        )
    if problems:
        raise DeployRefused(
            [
                FieldError(
                    field,
                    f"{stack} already exists ({stack.get_status_display().lower()}) "
                    f"and {reason}; change it on the stack page or pick another name.",
                    "stack_exists",
                )
                for field, reason in problems
            ]
        )
    env_errors: list[FieldError] = []
    stored = dict.fromkeys(stack.secrets.values_list("key", flat=True), "stored")
    merged = DeployRequest(
        request.tenant,
        request.project_name,
        request.template,
        request.stack_name,
        request.domains,
        {**stored, **request.env},
    )
    check_env(merged, load_manifest(stack.template_name), env_errors)
    if env_errors:
        raise DeployRefused(env_errors)
    with transaction.atomic():
        _store_secrets(stack, request.env)
        return request_operation(
            stack,
            OperationKind.DEPLOY,
            actor=actor,
            parameters={**_deploy_parameters(stack, request), "resumed": True},
        )


def rotate_encryption_keys() -> tuple[int, int]:
    """Re-encrypt every secret not yet under the current key. Returns (rotated, total)."""
    rotated = total = 0
    for secret in StackSecret.objects.only("pk", "value_encrypted").iterator():
        total += 1
        if encryption.needs_rotation(secret.value_encrypted):
            StackSecret.objects.filter(pk=secret.pk).update(
                value_encrypted=encryption.rotate(secret.value_encrypted)
            )
            rotated += 1
    return rotated, total


def request_operations(
    stacks: list[Stack],
    kind: str,
    *,
    actor: Any,
    parameters: dict[str, Any] | None = None,
) -> tuple[list[Operation], list[tuple[Stack, str]]]:
    """Queue `kind` on each stack; returns (queued, skipped with the reason for each)."""
    queued: list[Operation] = []
    skipped: list[tuple[Stack, str]] = []
    for stack in stacks:
        try:
            queued.append(request_operation(stack, kind, actor=actor, parameters=parameters))
        except OperationRefused as refused:
            skipped.append((stack, refused.message))
    return queued, skipped


def retry_operation(stack: Stack, *, actor: Any) -> Operation:
    """A new operation that does what the stack's last failed one tried, resuming its work."""
    failed = stack.operations.filter(status=OperationStatus.FAILED).first()
    latest = stack.operations.first()
    if failed is None or latest is None or latest.pk != failed.pk:
        raise OperationRefused("nothing_to_retry", f"{stack}: its last operation did not fail.")
    return request_operation(
        stack, failed.kind, actor=actor, parameters={**failed.parameters, "retry_of": failed.pk}
    )


def rotate_stack_secrets(stack: Stack, values: dict[str, str], *, actor: Any) -> Operation:
    """Store new values (encrypted) and queue their push to Coolify and a restart, as one."""
    if not values:
        raise OperationRefused("nothing_to_rotate", "Enter a new value for at least one key.")
    with transaction.atomic():
        operation = request_operation(
            stack, OperationKind.ROTATE_SECRETS, actor=actor, parameters={"keys": sorted(values)}
        )
        _store_secrets(stack, values)
    return operation


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
