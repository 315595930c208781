"""Deploy requests: validation (every error at once, each naming its field) and the dry-run plan.

The plan shows what a deploy would do without touching anything remote: the rendered compose,
the Coolify calls in order, domains per service, env keys with masked values, the hardening
audit and the validation errors. `provision deploy --dry-run` and the admin's preview show it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from cfadmin.encryption import mask
from cfadmin.validators import (
    normalize_domain,
    validate_dns_label,
    validate_env_key,
    validate_env_value,
    validate_single_line_text,
)
from stacks.catalog import template_names
from stacks.choices import StackStatus
from stacks.clients import coolify_rules
from stacks.compose import (
    Manifest,
    RenderError,
    compose_name_problem,
    compose_service_names,
    load_manifest,
    render_stack,
)
from stacks.models import Stack, StackDomain, stack_name_taken_error
from tenants.models import Tenant

PROJECT_NAME_MAX = 100
COOLIFY_ENVIRONMENT = "production"
POCKETBASE_COLLECTION = "agent_stacks"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    code: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


@dataclass
class DeployRequest:
    """The runbook's deploy flags. `domains` keeps order and repeats (`--domain` is repeatable)."""

    tenant: str
    project_name: str
    template: str
    stack_name: str
    domains: list[tuple[str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # The CLI creates a tenant it does not know yet; the admin deploys for existing tenants.
    create_tenant: bool = False

    def masked_env(self) -> dict[str, str]:
        return {key: mask(value) for key, value in self.env.items()}


def _messages(error: ValidationError) -> list[tuple[str, str]]:
    return [(e.code or "invalid", " ".join(e.messages)) for e in error.error_list]


def _is_dns_label(value: str) -> bool:
    try:
        validate_dns_label(value)
    except ValidationError:
        return False
    return True


def _check(errors: list[FieldError], name: str, validator: Any, value: Any) -> bool:
    try:
        validator(value)
    except ValidationError as error:
        errors.extend(FieldError(name, message, code) for code, message in _messages(error))
        return False
    return True


def validate_deploy_request(request: DeployRequest) -> tuple[list[FieldError], dict[str, Any]]:
    """All problems with a deploy request, and the cleaned values (normalised domains, objects)."""
    errors: list[FieldError] = []
    cleaned: dict[str, Any] = {"tenant": None, "manifest": None, "domains": []}

    if _check(errors, "tenant", validate_dns_label, request.tenant):
        tenant = Tenant.objects.filter(slug=request.tenant).first()
        if tenant is None and request.create_tenant:
            pass  # the deploy creates it, as the runbook's CLI took any tenant slug
        elif tenant is None:
            errors.append(
                FieldError(
                    "tenant",
                    f"Unknown tenant {request.tenant!r}: create it in cfadmin first.",
                    "unknown_tenant",
                )
            )
        elif not tenant.is_active:
            errors.append(
                FieldError(
                    "tenant",
                    f"Tenant {tenant.slug} is suspended: no new stacks.",
                    "tenant_suspended",
                )
            )
        cleaned["tenant"] = tenant

    project_name = (request.project_name or "").strip()
    if not project_name:
        errors.append(FieldError("project_name", "Must not be empty.", "required"))
    elif len(project_name) > PROJECT_NAME_MAX:
        errors.append(
            FieldError(
                "project_name", f"At most {PROJECT_NAME_MAX} characters.", "project_name_length"
            )
        )
    elif _check(errors, "project_name", validate_single_line_text, project_name):
        problem = coolify_rules.name_problem(project_name)
        if problem:  # Coolify's nameRules(): refused here, not at step 2 of the deploy
            errors.append(FieldError("project_name", f"{problem}.", "coolify_name"))
    cleaned["project_name"] = project_name

    manifest: Manifest | None = None
    if request.template not in template_names():
        errors.append(
            FieldError(
                "template",
                f"Unknown template {request.template!r}; choose one of: "
                f"{', '.join(template_names())}.",
                "unknown_template",
            )
        )
    else:
        manifest = load_manifest(request.template)
    cleaned["manifest"] = manifest

    if _check(errors, "stack_name", validate_dns_label, request.stack_name):
        owner = Stack.live_named(request.stack_name).first()
        if owner is not None:
            error = stack_name_taken_error(owner)
            errors.append(FieldError("stack_name", " ".join(error.messages), error.code))
        elif manifest is not None and _is_dns_label(request.tenant):
            problem = compose_name_problem(manifest, request.tenant, request.stack_name)
            if problem:
                errors.append(FieldError("stack_name", problem, "compose_name_length"))

    _validate_domains(request, manifest, errors, cleaned)
    check_env(request, manifest, errors)
    return errors, cleaned


def _validate_domains(
    request: DeployRequest,
    manifest: Manifest | None,
    errors: list[FieldError],
    cleaned: dict[str, Any],
) -> None:
    seen: set[str] = set()
    for service, raw_domain in request.domains:
        name = f"domain.{service}"
        if manifest is not None and service not in manifest.exposed:
            exposed = ", ".join(manifest.exposed) or "none"
            errors.append(
                FieldError(
                    name,
                    f"Template {manifest.name} exposes no service {service!r} "
                    f"(exposed services: {exposed}).",
                    "unknown_service",
                )
            )
            continue
        try:
            domain = normalize_domain(raw_domain)
        except ValidationError as error:
            errors.extend(FieldError(name, message, code) for code, message in _messages(error))
            continue
        if domain in seen:
            errors.append(FieldError(name, f"{domain} is given twice.", "domain_duplicate"))
            continue
        seen.add(domain)
        owner = (
            StackDomain.objects.filter(domain=domain, released_at__isnull=True)
            .select_related("stack__tenant")
            .first()
        )
        if owner is not None:
            errors.append(
                FieldError(
                    name, f"{domain} is already used by stack {owner.stack}.", "domain_taken"
                )
            )
            continue
        cleaned["domains"].append((service, domain))


def check_env(request: DeployRequest, manifest: Manifest | None, errors: list[FieldError]) -> None:
    for key, value in request.env.items():
        name = f"env.{key}"
        if not _check(errors, name, validate_env_key, key):
            continue
        if manifest is not None and key not in manifest.env_keys:
            errors.append(
                FieldError(
                    name,
                    f"Template {manifest.name} does not use {key}; it takes: "
                    f"{', '.join(manifest.env_keys) or 'no env keys'}.",
                    "unknown_env_key",
                )
            )
            continue
        # The error text never repeats the value: it may be a secret.
        _check(errors, name, validate_env_value, value)
    if manifest is not None:
        for key in manifest.required_env:
            if not request.env.get(key):
                errors.append(
                    FieldError(
                        f"env.{key}", f"Template {manifest.name} requires {key}.", "env_required"
                    )
                )


def service_urls(
    manifest: Manifest, tenant: str, stack_name: str, domains: list[tuple[str, str]]
) -> list[dict[str, str]]:
    """Coolify's `urls`: one item per exposed service, named by its compose service key, with
    comma-separated https URLs carrying the container port — or "" for a service without a
    domain, because Coolify leaves an app that `urls` does not name with its old fqdn and
    clears it only for an empty url (applyServiceUrls in ServicesController.php)."""
    names = compose_service_names(manifest, tenant, stack_name)
    by_service: dict[str, list[str]] = {service: [] for service in manifest.exposed}
    for service, domain in domains:
        by_service.setdefault(service, []).append(f"https://{domain}:{manifest.exposed[service]}")
    return [{"name": names[service], "url": ",".join(urls)} for service, urls in by_service.items()]


def project_description(tenant: str) -> str:
    """The description of a tenant's Coolify project; passes Coolify's DESCRIPTION_PATTERN
    (app/Support/ValidationPatterns.php: no ':' and no '#')."""
    return coolify_rules.description(f"cfadmin tenant {tenant}")


def service_description(tenant: str, stack_name: str, manifest: Manifest) -> str:
    """The description of a stack's Coolify service; reconcile reads tenant and stack back from
    it when the token cannot read the compose labels (stacks/reconcile/drift.py)."""
    return f"cfadmin stack {tenant}/{stack_name} ({manifest.name} {manifest.version})"


def coolify_deploy_calls(
    *,
    manifest: Manifest,
    tenant: str,
    project_name: str,
    stack_name: str,
    compose_text: str,
    domains: list[tuple[str, str]],
    masked_env: dict[str, str],
) -> list[dict[str, Any]]:
    """The Coolify API calls of a deploy, in order, as the provisioning steps make them."""
    compose_b64 = base64.b64encode(compose_text.encode()).decode()
    calls: list[dict[str, Any]] = [
        {
            "step": "ensure_project",
            "method": "GET",
            "path": "/api/v1/projects",
            "why": f"find project {project_name!r}; skipped when the tenant's other stacks "
            "already recorded it",
        },
        {
            "step": "ensure_project",
            "method": "POST",
            "path": "/api/v1/projects",
            "body": {"name": project_name, "description": project_description(tenant)},
            "why": "only if no project of that name exists",
        },
        {
            "step": "create_service",
            "method": "GET",
            "path": "/api/v1/services",
            "why": f"only when resuming an interrupted deploy: adopt the service named "
            f"{stack_name!r} it may already have created",
        },
        {
            "step": "create_service",
            "method": "POST",
            "path": "/api/v1/services",
            "body": {
                "project_uuid": "<project uuid>",
                "server_uuid": "<server uuid>",
                "environment_name": COOLIFY_ENVIRONMENT,
                "name": stack_name,
                "description": service_description(tenant, stack_name, manifest),
                "docker_compose_raw": f"<base64 of the compose below, {len(compose_b64)} chars>",
                "urls": service_urls(manifest, tenant, stack_name, domains),
                "instant_deploy": False,
            },
        },
    ]
    if masked_env:
        calls.append(
            {
                "step": "set_env",
                "method": "PATCH",
                "path": "/api/v1/services/<service uuid>/envs/bulk",
                "body": {
                    "data": [
                        {"key": k, "value": v, "is_literal": True} for k, v in masked_env.items()
                    ]
                },
            }
        )
    calls += [
        {"step": "start", "method": "POST", "path": "/api/v1/services/<service uuid>/start"},
        {
            "step": "wait_healthy",
            "method": "GET",
            "path": "/api/v1/services",
            "why": "poll (one call per round for every stack in flight) until running:healthy",
        },
    ]
    return calls


def build_deploy_plan(request: DeployRequest) -> dict[str, Any]:
    """The dry-run: everything a deploy would do, nothing done. Secret values appear masked."""
    errors, cleaned = validate_deploy_request(request)
    manifest: Manifest | None = cleaned["manifest"]
    masked_env = request.masked_env()
    plan: dict[str, Any] = {
        "tenant": request.tenant,
        "project_name": cleaned["project_name"],
        "stack_name": request.stack_name,
        "template": {"name": request.template, "version": manifest.version if manifest else None},
        "domains": {},
        "env": masked_env,
        "compose": None,
        "coolify_calls": [],
        "pocketbase": None,
        "audit": None,
        "errors": [e.as_dict() for e in errors],
    }
    for service, domain in cleaned["domains"]:
        plan["domains"].setdefault(service, []).append(domain)
    # Render whenever the names are well-formed, so the preview helps even with other errors.
    if manifest is not None and _is_dns_label(request.tenant) and _is_dns_label(request.stack_name):
        try:
            rendered = render_stack(
                manifest,
                tenant=request.tenant,
                stack_name=request.stack_name,
                env_keys=[k for k in request.env if k in manifest.env_keys],
            )
        except RenderError as exc:
            plan["errors"].append(
                {"field": "template", "message": str(exc), "code": "render_failed"}
            )
        else:
            plan["compose"] = rendered.text
            plan["audit"] = {
                "ok": not rendered.findings,
                "findings": [f.as_dict() for f in rendered.findings],
            }
            plan["coolify_calls"] = coolify_deploy_calls(
                manifest=manifest,
                tenant=request.tenant,
                project_name=cleaned["project_name"],
                stack_name=request.stack_name,
                compose_text=rendered.text,
                domains=cleaned["domains"],
                masked_env={k: v for k, v in masked_env.items() if k in manifest.env_keys},
            )
            plan["pocketbase"] = {
                "collection": POCKETBASE_COLLECTION,
                "upsert_by": ["tenant", "stack_name"],
                "record": {
                    "tenant": request.tenant,
                    "stack_name": request.stack_name,
                    "template": manifest.name,
                    "status": StackStatus.RUNNING.value,
                    "project_uuid": "<project uuid>",
                    "service_uuid": "<service uuid>",
                    "domains": [d for _, d in cleaned["domains"]],
                },
            }
            if rendered.findings:
                plan["errors"].append(
                    {
                        "field": "template",
                        "code": "audit_failed",
                        "message": f"{len(rendered.findings)} hardening findings",
                    }
                )
    plan["ok"] = not plan["errors"]
    return plan
