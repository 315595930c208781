"""The runbook's deploy: validate the request, create or resume the stack and queue its deploy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model

from cfadmin import audit
from cfadmin.integrity import broken_unique_rule
from cfadmin.models import AuditAction
from cfadmin.validators import normalize_domain
from stacks.choices import OperationKind
from stacks.compose import load_manifest
from stacks.models import Operation, Stack, StackDomain
from stacks.plan import DeployRequest, FieldError, check_env, validate_deploy_request
from stacks.services.operations import request_operation
from stacks.services.secrets import store_secrets
from stacks.services.tenants import create_tenant
from tenants.models import Tenant


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
        store_secrets(stack, request.env)
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


def _deploy_parameters(stack: Stack, request: DeployRequest) -> dict[str, Any]:
    return {
        "template": stack.template_name,
        "template_version": stack.template_version,
        "project_name": stack.project_name,
        "domains": [f"{s}={d}" for s, d in request.domains],
        "env_keys": sorted(request.env),
    }  # keys only: values are secrets


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
        store_secrets(stack, request.env)
        return operation
