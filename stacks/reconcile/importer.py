"""Reconcile's import: adopt a stack that exists only in Coolify (or in PocketBase with its
Coolify service still there), with its domains, env values and PocketBase record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from cfadmin import audit
from cfadmin.models import AuditAction
from stacks.catalog import template_names
from stacks.choices import StackStatus
from stacks.clients.coolify import CoolifyClient
from stacks.clients.errors import ClientError, NotFound
from stacks.clients.pocketbase import PocketBaseClient
from stacks.compose import load_manifest, service_key_for
from stacks.models import Stack, StackDomain, StackSecret
from stacks.reconcile.drift import coolify_status, service_identity
from stacks.reconcile.records import push_record
from stacks.reconcile.refused import RepairRefused
from stacks.services import create_tenant
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def import_stack(
    service_uuid: str, *, actor: Any, coolify: CoolifyClient, pocketbase: PocketBaseClient
) -> Stack:
    """Adopt a Coolify service cfadmin made but does not know (its database lost it, or it was
    made by the runbook's CLI): the stack, its domains, its env values (encrypted), its
    PocketBase record. Tenant, stack and template come from the compose labels, the PocketBase
    record, or the service's description, in that order."""
    try:
        service = coolify.get_service(service_uuid)
    except NotFound:
        raise RepairRefused(f"Coolify has no service {service_uuid} (any more).") from None
    if (
        Stack.objects.filter(coolify_service_uuid=service_uuid)
        .exclude(status=StackStatus.DELETED)
        .exists()
    ):
        raise RepairRefused(f"cfadmin already has a stack for service {service_uuid}.")
    identity = service_identity(service)
    record = None
    if identity:
        record = next(
            iter(
                r
                for r in pocketbase.list_records(tenant=identity["tenant"])
                if r.get("stack_name") == identity["stack_name"]
            ),
            None,
        )
    else:
        record = next(
            (r for r in pocketbase.list_records() if r.get("service_uuid") == service_uuid), None
        )
        if record is not None:
            identity = {"tenant": record["tenant"], "stack_name": record["stack_name"]}
    if not identity:
        raise RepairRefused(
            f"Service {service_uuid} carries no cfadmin labels or description and no PocketBase "
            "record names it: cfadmin cannot tell its tenant, stack and template."
        )
    template = identity.get("template") or (record or {}).get("template", "")
    if template not in template_names():
        raise RepairRefused(
            f"template: {template or 'unknown'!s} is not one of cfadmin's templates "
            f"({', '.join(template_names())})."
        )
    manifest = load_manifest(template)
    project = _project_of(service, coolify, hint=(record or {}).get("project_uuid", ""))
    # Applications are named by their compose service keys (`cf-agent-<tenant>-<stack>`); older
    # stacks used the manifest's keys (`webui`) and are read as such.
    app_keys = {
        str(app.get("name")): service_key_for(
            manifest, identity["tenant"], identity["stack_name"], str(app.get("name"))
        )
        or str(app.get("name"))
        for app in service.get("applications") or []
    }
    domains = [
        (app_keys[str(app.get("name"))], host)
        for app in service.get("applications") or []
        for host in _hosts(str(app.get("fqdn") or ""))
        if app_keys[str(app.get("name"))] in manifest.exposed
    ]
    # `value`, never `real_value`: Coolify's real_value is the value as written to the .env
    # file — wrapped in '…' for literal and multiline variables, backslash-escaped otherwise
    # (EnvironmentVariable::realValue in app/Models/EnvironmentVariable.php).
    env_values = {
        str(env.get("key")): str(env["value"])
        for env in coolify.list_service_envs(service_uuid)
        if env.get("key") in manifest.env_keys and env.get("value") not in (None, "")
    }
    status = coolify_status(service)
    if status is None:
        raise RepairRefused(f"Coolify says {service.get('status')}; import it once it settles.")
    with transaction.atomic():
        tenant = Tenant.objects.filter(slug=identity["tenant"]).first()
        if tenant is None:
            try:
                tenant = create_tenant(
                    identity["tenant"],
                    actor=actor,
                    reason="Created by reconcile, importing a stack cfadmin did not know",
                )
            except ValidationError as error:
                raise RepairRefused("tenant: " + " ".join(error.messages)) from None
        if Stack.live_named(identity["stack_name"]).exists():
            raise RepairRefused(
                f"stack_name: a live stack named {identity['stack_name']} exists already."
            )
        stack = Stack(
            tenant=tenant,
            project_name=project.get("name", ""),
            stack_name=identity["stack_name"],
            template_name=template,
            template_version=identity.get("template_version") or "",
            status=status,
            status_detail=f"Imported from Coolify ({service.get('status')}) by reconcile",
            coolify_project_uuid=project.get("uuid", ""),
            coolify_service_uuid=service_uuid,
            pocketbase_id=str((record or {}).get("id", "")),
        )
        _clean(stack, "stack")
        try:
            with transaction.atomic():
                stack.save()
        except IntegrityError:  # another import of the same stack won
            raise RepairRefused(f"{stack} was imported meanwhile.") from None
        for service_name, host in domains:
            domain = StackDomain(stack=stack, service=service_name, domain=host)
            _clean(domain, f"domain.{service_name}")
            domain.save()
        for key, value in env_values.items():
            secret = StackSecret(stack=stack, key=key)
            _clean(secret, f"env.{key}", lambda s=secret, v=value: s.set_value(v))
            secret.save()
        audit.record(
            actor=actor,
            action=AuditAction.CREATE,
            target=stack,
            message=f"Imported from Coolify service {service_uuid} by reconcile",
            changes={
                "after": audit.snapshot(stack),
                "domains": domains,
                "env_keys": sorted(env_values),
            },
        )
    try:
        push_record(stack, actor=actor, pocketbase=pocketbase)
    except ClientError as error:
        logger.warning("%s imported; PocketBase record not written: %s", stack, error)
        stack.record_problem = f" Its PocketBase record was not written ({error}): reconcile again."
    return stack


def _clean(obj: Any, field_name: str, prepare: Callable[[], None] | None = None) -> None:
    """Validate before saving; a failure refuses the import, naming the field (never a value)."""
    try:
        if prepare is not None:
            prepare()
        obj.full_clean()
    except ValidationError as error:
        raise RepairRefused(f"{field_name}: " + " ".join(error.messages)) from None


def _hosts(fqdn: str) -> list[str]:
    return [urlsplit(url).hostname or "" for url in fqdn.split(",") if url.strip()]


def _project_of(service: dict[str, Any], coolify: CoolifyClient, *, hint: str) -> dict[str, Any]:
    """The project holding the service (looked up through its environment)."""
    environment_id = service.get("environment_id")
    candidates = [hint] if hint else []
    candidates += [p["uuid"] for p in coolify.list_projects() if p.get("uuid") != hint]
    for uuid in candidates:
        try:
            project = coolify.get_project(uuid)
        except NotFound:
            continue
        if any(e.get("id") == environment_id for e in project.get("environments", [])):
            return project
    raise RepairRefused(f"No Coolify project holds service {service.get('uuid')}'s environment.")
