"""Reconcile's repairs: one repair applied to one target, each checking the remote side again
first so that an old report never does harm. Which repairs are destructive or safe to apply
unattended is said once, on stacks.choices.Repair."""

from __future__ import annotations

from typing import Any

from cfadmin import audit
from cfadmin.models import AuditAction
from stacks.choices import Repair, StackStatus
from stacks.clients.coolify import CoolifyClient
from stacks.clients.errors import ClientError, NotFound
from stacks.clients.pocketbase import PocketBaseClient
from stacks.models import InvalidTransition, Stack
from stacks.provisioning import get_coolify, get_pocketbase
from stacks.reconcile.drift import UNSETTLED, containers_running, coolify_status
from stacks.reconcile.importer import import_stack
from stacks.reconcile.records import push_record
from stacks.reconcile.refused import RepairRefused


def repair(
    kind: str,
    target: str,
    *,
    actor: Any,
    coolify: CoolifyClient | None = None,
    pocketbase: PocketBaseClient | None = None,
) -> str:
    """Apply one repair to one target ("stack:12", "service:<uuid>", "record:<id>"); returns
    what was done. Raises RepairRefused when it no longer applies."""
    if kind not in Repair.values:
        raise RepairRefused(f"Unknown repair {kind!r}.")
    coolify = coolify or get_coolify()
    pocketbase = pocketbase or get_pocketbase()
    target_type, _, target_id = target.partition(":")
    if kind == Repair.IMPORT:
        if target_type == "service":
            stack = import_stack(target_id, actor=actor, coolify=coolify, pocketbase=pocketbase)
            problem = getattr(stack, "record_problem", "")
            return f"Imported {stack} from Coolify service {target_id}.{problem}"
        raise RepairRefused("Import needs a Coolify service to adopt.")
    if kind == Repair.DELETE_RECORD:
        if target_type != "record":
            raise RepairRefused("Only an orphan PocketBase record can be deleted here.")
        return _delete_orphan_record(target_id, actor=actor, coolify=coolify, pocketbase=pocketbase)
    if target_type != "stack" or not target_id.isdigit():
        raise RepairRefused(f"{Repair(kind).label} applies to a stack.")
    stack = Stack.objects.select_related("tenant").filter(pk=int(target_id)).first()
    if stack is None or stack.status == StackStatus.DELETED:
        raise RepairRefused("The stack is gone or deleted.")
    if stack.status in UNSETTLED or stack.operations.in_flight().exists():
        raise RepairRefused(f"{stack} has an operation in flight; reconcile again when it ends.")
    if stack.is_isolated and kind != Repair.PUSH_RECORD:
        raise RepairRefused(
            f"{stack} is isolated on purpose (containment): reconcile does not change its "
            "status. Release it, isolate it again or delete it."
        )
    try:
        if kind == Repair.PUSH_RECORD:
            return push_record(stack, actor=actor, pocketbase=pocketbase)
        if kind == Repair.TAKE_COOLIFY_STATUS:
            return _take_coolify_status(stack, actor=actor, coolify=coolify, pocketbase=pocketbase)
        return _mark_missing(stack, actor=actor, coolify=coolify, pocketbase=pocketbase)
    except InvalidTransition:
        raise RepairRefused(f"{stack}'s status changed meanwhile; reconcile again.") from None


def _take_coolify_status(
    stack: Stack, *, actor: Any, coolify: CoolifyClient, pocketbase: PocketBaseClient
) -> str:
    if not stack.coolify_service_uuid:
        raise RepairRefused(f"{stack} has no Coolify service.")
    try:
        service = coolify.get_service(stack.coolify_service_uuid)
    except NotFound:
        raise RepairRefused("The Coolify service is gone now; reconcile again.") from None
    observed = coolify_status(service)
    if observed is None:
        raise RepairRefused(f"Coolify says {service.get('status')}; reconcile again in a moment.")
    if observed == StackStatus.STOPPED and containers_running(
        coolify, stack, stack.coolify_service_uuid
    ):
        raise RepairRefused(
            f"Coolify says {service.get('status')}, but the stack's container runs: Coolify's "
            "status lags after a restart. Reconcile again in a minute."
        )
    if observed == stack.status:
        raise RepairRefused(f"{stack} already agrees with Coolify ({stack.status}).")
    before = stack.status
    detail = f"Taken from Coolify by reconcile: {service.get('status')}"
    stack.transition_to(observed, detail=detail)
    audit.record(
        actor=actor,
        action=AuditAction.UPDATE,
        target=stack,
        message=f"Reconcile: status {before} → {observed} ({detail})",
        changes={"fields": {"status": [before, observed]}},
    )
    push_record(stack, actor=actor, pocketbase=pocketbase)
    return f"{stack}: status {before} → {observed}, as Coolify says."


def _mark_missing(
    stack: Stack, *, actor: Any, coolify: CoolifyClient, pocketbase: PocketBaseClient
) -> str:
    if stack.status == StackStatus.ERROR:
        raise RepairRefused(f"{stack} is already marked error.")
    if stack.coolify_service_uuid and coolify.service_exists(stack.coolify_service_uuid):
        raise RepairRefused("The Coolify service exists now; reconcile again.")
    before = stack.status
    detail = (
        f"Coolify service {stack.coolify_service_uuid} is gone (found by reconcile). "
        "Redeploy to create it again, or delete the stack."
    )
    stack.transition_to(StackStatus.ERROR, detail=detail)
    audit.record(
        actor=actor,
        action=AuditAction.UPDATE,
        target=stack,
        message=f"Reconcile: status {before} → error ({detail})",
        changes={"fields": {"status": [before, StackStatus.ERROR]}},
    )
    push_record(stack, actor=actor, pocketbase=pocketbase)
    return f"{stack}: marked error; its Coolify service is gone."


def _delete_orphan_record(
    record_id: str, *, actor: Any, coolify: CoolifyClient, pocketbase: PocketBaseClient
) -> str:
    record = next((r for r in pocketbase.list_records() if r.get("id") == record_id), None)
    if record is None:
        raise RepairRefused("The PocketBase record is already gone.")
    tenant, stack_name = record.get("tenant", ""), record.get("stack_name", "")
    if Stack.live_named(stack_name).filter(tenant__slug=tenant).exists():
        raise RepairRefused(f"cfadmin knows {tenant}/{stack_name} now; the record is not orphan.")
    uuid = str(record.get("service_uuid") or "")
    owned = Stack.objects.filter(coolify_service_uuid=uuid).exclude(status=StackStatus.DELETED)
    if uuid and not owned.exists() and coolify.service_exists(uuid):
        raise RepairRefused(
            f"Coolify still runs service {uuid} for this record: import it instead."
        )
    pocketbase.delete_record(record_id)
    message = f"Deleted orphan PocketBase record {record_id} ({tenant}/{stack_name})."
    audit.record(
        actor=actor,
        action=AuditAction.DELETE,
        message=f"Reconcile: {message}",
        changes={"before": {k: record.get(k) for k in ("tenant", "stack_name", "status")}},
        tenant_slug=str(tenant),
        stack_name=str(stack_name),
    )
    return message


def unattended_kinds(*, safe: bool, imports: bool) -> set[str]:
    """The repairs `reconcile --repair` (the safe ones) and `--import` apply by themselves."""
    kinds: set[str] = {kind for kind in Repair if kind.is_safe} if safe else set()
    if imports:
        kinds.add(Repair.IMPORT)
    return kinds


def apply_repairs(drift: list[dict[str, Any]], kinds: set[str], *, actor: Any) -> list[dict]:
    """Apply, to each stored drift row, the first of its repairs that is one of `kinds`; what
    each did (`result`) or why not (`error`), per target."""
    applied: list[dict[str, str]] = []
    for row in drift:
        kind = next((r for r in row["repairs"] if r in kinds), None)
        if kind is None:
            continue
        try:
            done = repair(kind, row["target"], actor=actor)
            applied.append({"target": row["target"], "repair": kind, "result": done})
        except (RepairRefused, ClientError) as error:
            applied.append({"target": row["target"], "repair": kind, "error": str(error)})
    return applied
