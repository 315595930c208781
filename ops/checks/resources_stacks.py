"""Which stack (and template service, with its limits) a container or volume on a server
belongs to: every stack's `Stack.server_names()` read once from the database, before the
checks' threads start or, failing that, in the check."""

from __future__ import annotations

from dataclasses import dataclass, field

from ops.checks.resources_parse import parse_size
from stacks.choices import StackStatus
from stacks.compose.errors import TemplateError
from stacks.compose.manifest import load_manifest
from stacks.compose.naming import service_key_for
from stacks.models import Stack


@dataclass(frozen=True)
class ContainerOwner:
    tenant: str
    stack: str
    template: str
    service: str  # the manifest's key (llm, webui, bot)
    memory_limit: int | None  # bytes, from the template's `limits.memory`
    cpus: float | None


@dataclass(frozen=True)
class VolumeOwner:
    tenant: str
    stack: str
    deleted: bool  # the stack is deleted: its volumes were kept


@dataclass
class StackIndex:
    containers: dict[str, ContainerOwner] = field(default_factory=dict)
    volumes: dict[str, VolumeOwner] = field(default_factory=dict)


def build_index() -> StackIndex:
    """Every stack Coolify has a service for, deleted ones too (kept volumes stay on disk).
    A live stack wins over a deleted one of the same uuid."""
    index = StackIndex()
    stacks = (
        Stack.objects.exclude(coolify_service_uuid="")
        .select_related("tenant")
        .only("stack_name", "template_name", "coolify_service_uuid", "status", "tenant__slug")
        .order_by("status", "pk")
    )
    for stack in sorted(stacks, key=lambda s: s.status != StackStatus.DELETED):
        add_stack(index, stack)
    return index


def add_stack(index: StackIndex, stack: Stack) -> None:
    try:
        manifest = load_manifest(stack.template_name)
        names = stack.server_names()
    except TemplateError:  # a template since removed: its stack cannot be mapped
        return
    tenant, uuid = stack.tenant.slug, stack.coolify_service_uuid
    for container in names.containers:
        compose_name = container.removesuffix(f"-{uuid}")
        key = service_key_for(manifest, tenant, stack.stack_name, compose_name) or ""
        limits = manifest.services[key].limits if key in manifest.services else {}
        cpus = limits.get("cpus")
        index.containers[container] = ContainerOwner(
            tenant=tenant,
            stack=stack.stack_name,
            template=stack.template_name,
            service=key,
            memory_limit=parse_size(limits.get("memory")),
            cpus=float(cpus) if cpus is not None else None,
        )
    for volume in names.volumes:
        index.volumes[volume] = VolumeOwner(
            tenant=tenant, stack=stack.stack_name, deleted=stack.status == StackStatus.DELETED
        )
