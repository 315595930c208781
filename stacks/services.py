"""Workflows over several stack rows: requesting operations, key rotation. Each one audits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from cfadmin import audit, encryption
from cfadmin.integrity import broken_unique_rule
from cfadmin.jobs import enqueue
from cfadmin.models import AuditAction
from cfadmin.validators import normalize_domain
from stacks import pocketbase_outbox
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
            f"{stack} already has an operation queued or running; wait for it to finish "
            "(a queued one that no worker takes can be cancelled on the stack's page).",
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

    Two requests at once for the same new stack name, or the same domain, both pass the checks;
    the database lets one insert win, and the other is refused with the field error the checks
    give a moment later (never an IntegrityError).
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
        tenant = cleaned["tenant"] or _new_tenant(request, actor=actor)
        try:
            with transaction.atomic():  # the stack and its domains, undone together
                stack = _insert(
                    "stack_name",
                    Stack,
                    lambda: Stack.objects.create(
                        tenant=tenant,
                        project_name=cleaned["project_name"],
                        stack_name=request.stack_name,
                        template_name=manifest.name,
                        template_version=manifest.version,
                    ),
                )
                for service, domain in cleaned["domains"]:
                    _insert(
                        f"domain.{service}",
                        StackDomain,
                        lambda s=service, d=domain: StackDomain.objects.create(
                            stack=stack, service=s, domain=d
                        ),
                    )
        except _LostRace as lost:
            # Our rows are gone, the winner's are visible: the checks now say what they say
            # to anyone a moment later; the constraint's own message if they see nothing.
            errors, _ = validate_deploy_request(request)
            raise DeployRefused(errors or [lost.field_error]) from None
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


class _LostRace(Exception):
    """An insert hit a unique constraint: another request saved the same value after our check."""

    def __init__(self, field_error: FieldError) -> None:
        super().__init__(field_error.message)
        self.field_error = field_error


def _insert(field: str, model: type[Model], insert: Callable[[], Model]) -> Any:
    """`insert` in a savepoint; _LostRace (naming `field`) if it broke one of `model`'s unique
    rules, any other integrity error as it is."""
    try:
        with transaction.atomic():
            return insert()
    except IntegrityError as error:
        rule = broken_unique_rule(error, model)
        if rule is None:
            raise
        raise _LostRace(FieldError(field, rule.message, rule.code)) from None


def _new_tenant(request: DeployRequest, *, actor: Any) -> Tenant:
    """The deploy's tenant, new to cfadmin. One that a deploy running at the same time created
    meanwhile is used instead, as a deploy a moment later would use it."""
    try:
        return create_tenant(request.tenant, actor=actor)
    except ValidationError as error:
        errors, cleaned = validate_deploy_request(request)
        if errors:
            raise DeployRefused(errors) from None
        if cleaned["tenant"] is None:
            raise DeployRefused(
                [FieldError("tenant", " ".join(error.messages), "invalid")]
            ) from None
        return cleaned["tenant"]


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
        # The operation first: the one-in-flight constraint stops a second resume of the same
        # stack right here, before it writes (or races to insert) any secret.
        operation = request_operation(
            stack,
            OperationKind.DEPLOY,
            actor=actor,
            parameters={**_deploy_parameters(stack, request), "resumed": True},
        )
        _store_secrets(stack, request.env)
        return operation


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


# The status an operation's run puts a stack in while it works (provisioning.WORKING_STATUS).
_WORKING = (StackStatus.DEPLOYING, StackStatus.DELETING)


def cancel_operation(operation: Operation, *, actor: Any, reason: str) -> Operation:
    """Cancel a queued operation, with a reason for the audit trail. A running or finished one
    is refused: a running one is doing remote work that must end by itself (or, if its worker
    died, is recovered).

    The stack keeps its status, which a queued operation has not changed; if an earlier attempt
    of this operation began (the stack says deploying or deleting), what exists in Coolify may be
    partial, so the stack goes to error, saying so. A task still in the queue for it finds it
    cancelled and does nothing (the claim only takes a queued operation).
    """
    reason = " ".join(reason.split())
    if not reason:
        raise OperationRefused(
            "reason_required", "Give a reason for cancelling: it goes into the audit trail."
        )
    refusal = cancellation_refusal(operation)
    if refusal:
        raise OperationRefused("not_queued", refusal)
    entry = None
    with transaction.atomic():
        cancelled = Operation.objects.filter(pk=operation.pk, status=OperationStatus.QUEUED).update(
            status=OperationStatus.CANCELLED,
            finished_at=timezone.now(),
            error=f"Cancelled by {audit.actor_label(actor)}: {reason}",
            result={"ok": False, "error": {"code": "cancelled", "message": reason}},
        )
        if not cancelled:
            operation.refresh_from_db()
            raise OperationRefused("not_queued", cancellation_refusal(operation))
        stack = Stack.objects.select_related("tenant").get(pk=operation.stack_id)
        before = stack.status
        after = stack_status_after_cancel(stack)
        if after != stack.status:
            stack.transition_to(
                after,
                detail=f"{operation} was cancelled ({reason}) after an attempt that did not "
                "finish: what exists in Coolify may be partial. Retry it, redeploy or delete.",
            )
            entry = pocketbase_outbox.queue_error(stack, kind=operation.kind)
        audit.record(
            actor=actor,
            action=AuditAction.OPERATION_RESULT,
            target=operation,
            message=f"{operation.get_kind_display()} cancelled: {reason}",
            changes={
                "reason": reason,
                "status": [OperationStatus.QUEUED, OperationStatus.CANCELLED],
                "stack_status": [before, stack.status],
            },
        )
    if entry is not None:
        pocketbase_outbox.request_drain()
    operation.refresh_from_db()
    return operation


def stack_status_after_cancel(stack: Stack) -> str:
    """What cancelling its queued operation leaves the stack: as it is, or error when an earlier
    attempt began changing it (deploying or deleting)."""
    if stack.status in _WORKING and stack.can_transition(StackStatus.ERROR):
        return StackStatus.ERROR
    return stack.status


def cancellation_refusal(operation: Operation) -> str:
    """Why the operation cannot be cancelled, or "" when it can."""
    if operation.can_be_cancelled:
        return ""
    if operation.status == OperationStatus.RUNNING:
        return (
            f"{operation} is running: only a queued operation can be cancelled. It ends by "
            "itself; if its worker died, recovery resumes it or fails it."
        )
    return (
        f"{operation} is {operation.get_status_display().lower()} already: only a queued "
        "operation can be cancelled."
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
