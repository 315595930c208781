"""Data recovery of deleted stacks: redeploy a stack onto the volumes its delete kept, and ask
Coolify whether a stack's volumes still exist (as far as its API can tell)."""

from __future__ import annotations

from typing import Any

import yaml
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse

from cfadmin import audit
from cfadmin.models import AuditAction
from stacks.choices import OperationKind, StackStatus
from stacks.clients.coolify import CoolifyClient
from stacks.clients.errors import ClientError, NotFound
from stacks.models import Operation, Stack, StackDomain, StackSecret
from stacks.models.kept_volumes import KeptVolumes, stack_volumes
from stacks.services.operations import request_operation
from stacks.stack_page import Link, Panel


class RecoveryRefused(Exception):
    """The kept volumes cannot be redeployed onto now; the message says why."""


def kept_volumes_of(stack: Stack) -> KeptVolumes | None:
    """The newest kept-volumes row of a deleted stack (None: its delete destroyed them)."""
    return stack.kept_volumes.select_related("reused_by").first()


def kept_volumes_panel(stack: Stack, request: HttpRequest) -> Panel | None:
    """The stack page of a deleted stack whose delete kept its volumes: which, and whether a
    new stack was redeployed onto them (stacks.stack_page provider)."""
    if stack.is_live:
        return None
    kept = kept_volumes_of(stack)
    if kept is None:
        return None
    here = reverse("admin:stacks_stack_change", args=[stack.pk])
    if kept.reused_by is not None:
        url = reverse("admin:stacks_stack_change", args=[kept.reused_by.pk])
        state = Link("redeployed onto", url, note=str(kept.reused_by))
    else:
        state = Link("not reused yet", here)
    return Panel(
        key="kept-volumes",
        title="Kept volumes",
        headline_title="Volumes kept by the delete",
        headline=(Link(f"{len(kept.volumes)} kept", here), state),
        rows=tuple(Link(name, here, note="kept") for name in kept.volumes),
        order=20,
    )


def redeploy_onto_kept(kept: KeptVolumes, *, actor: Any) -> Operation:
    """A new live stack like the deleted one (tenant, template, name, the domains it released,
    its secrets still encrypted) whose deploy mounts the kept volumes; the volumes are reserved
    for it at once, so two requests cannot both reuse them."""
    old = Stack.objects.select_related("tenant").get(pk=kept.stack_id)
    if old.status != StackStatus.DELETED:
        raise RecoveryRefused(f"{old} is not deleted: its volumes are still its own.")
    if kept.reused_by_id is not None:
        raise RecoveryRefused(f"The kept volumes of {old} were redeployed onto already.")
    owner = Stack.live_named(old.stack_name).first()
    if owner is not None:
        raise RecoveryRefused(f"A live stack named {old.stack_name} exists ({owner}).")
    domains = list(old.domains.filter(released_at=old.deleted_at).values_list("service", "domain"))
    try:
        with transaction.atomic():
            stack = Stack.objects.create(
                tenant=old.tenant,
                project_name=old.project_name,
                stack_name=old.stack_name,
                template_name=old.template_name,
            )
            for service, domain in domains:
                StackDomain.objects.create(stack=stack, service=service, domain=domain)
            for secret in old.secrets.all():  # copied encrypted: never decrypted here
                StackSecret.objects.create(
                    stack=stack,
                    key=secret.key,
                    value_encrypted=secret.value_encrypted,
                    masked_value=secret.masked_value,
                )
            reserved = KeptVolumes.objects.filter(pk=kept.pk, reused_by__isnull=True).update(
                reused_by=stack
            )
            if not reserved:
                raise RecoveryRefused(f"The kept volumes of {old} were redeployed onto already.")
            audit.record(
                actor=actor,
                action=AuditAction.CREATE,
                target=stack,
                message=f"Created to redeploy onto the kept volumes of deleted stack {old.pk}",
                changes={
                    "recovered_from": old.pk,
                    "volumes": kept.volumes,
                    "domains": domains,
                    "env_keys": sorted(old.secrets.values_list("key", flat=True)),
                },
            )
            return request_operation(
                stack,
                OperationKind.DEPLOY,
                actor=actor,
                parameters={
                    "template": stack.template_name,
                    "template_version": stack.template_version,
                    "project_name": stack.project_name,
                    "domains": [f"{s}={d}" for s, d in domains],
                    "kept_volumes_id": kept.pk,
                    "recovered_from": old.pk,
                },
            )
    except IntegrityError:
        raise RecoveryRefused(
            f"{old.stack_name} or one of its domains was taken by another stack meanwhile."
        ) from None


def volumes_exist(stack: Stack, coolify: CoolifyClient | None = None) -> tuple[bool | None, dict]:
    """Whether the stack's volumes still exist, as far as Coolify's API tells, and the details.

    Coolify has no volume listing for services: GET /services/{uuid} loads only `applications`
    and `databases` (app/Http/Controllers/Api/ServicesController.php service_by_uuid), without
    their persistent storages. What it does return, to a token with read:sensitive, is the
    `docker_compose` serviceParser wrote, which names each volume the service mounts. So: True
    when the live service's compose mounts every volume; False when it does not or the service
    is gone from Coolify; None ("cannot tell") for a deleted stack whose volumes were kept (no
    service holds them) or when the compose is not shown; details name the volumes.
    """
    kept = kept_volumes_of(stack) if not stack.is_live else None
    if kept is not None and kept.reused_by is None:
        return None, {
            "volumes": kept.volumes,
            "reason": "kept by the delete; Coolify cannot list volumes no service mounts",
        }
    target = kept.reused_by if kept is not None else stack
    if target is None or not target.is_live or not target.coolify_service_uuid:
        return None, {"volumes": [], "reason": "no Coolify service to ask"}
    expected = stack_volumes(target)
    if coolify is None:
        from stacks.remote import get_coolify

        coolify = get_coolify()
    try:
        service = coolify.get_service(target.coolify_service_uuid)
    except NotFound:
        return False, {"volumes": expected, "reason": "the service is gone from Coolify"}
    except ClientError as error:
        return None, {"volumes": expected, "reason": f"Coolify did not answer: {error.message}"}
    mounted = _mounted_volumes(service.get("docker_compose"))
    if mounted is None:
        return None, {"volumes": expected, "reason": "Coolify did not show the compose"}
    missing = [name for name in expected if name not in mounted]
    return not missing, {"volumes": expected, "missing": missing, "service": target.pk}


def _mounted_volumes(compose: Any) -> set[str] | None:
    """Docker volume names a service's rendered compose mounts (by name or data directory)."""
    if not isinstance(compose, str) or not compose.strip():
        return None
    try:
        data = yaml.safe_load(compose)
    except yaml.YAMLError:
        return None
    found: set[str] = set()
    for service in (data.get("services") or {}).values():
        for entry in (service or {}).get("volumes") or []:
            source = entry.get("source") if isinstance(entry, dict) else str(entry).split(":")[0]
            source = str(source or "")
            if source.endswith("/_data") and "/volumes/" in source:
                source = source.rsplit("/", 2)[-2]
            found.add(source)
    return found
