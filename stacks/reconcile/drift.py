"""Reconcile's comparison: what cfadmin believes against what Coolify runs and what PocketBase
records, as a list of Drift rows (each naming the repairs that apply)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import yaml
from django.db.models import Prefetch
from django.utils import timezone

from stacks.choices import DriftKind, Repair, StackStatus
from stacks.clients.coolify import CoolifyClient
from stacks.clients.coolify_status import ServiceState, interpret
from stacks.clients.errors import ClientError
from stacks.compose import LABEL_PREFIX, compose_service_names, load_manifest
from stacks.models import Operation, Stack, StackDomain
from stacks.remote.outbox import pending_records, pocketbase_record

# Stacks in these states are being changed by an operation: their remote side is in motion.
UNSETTLED = (StackStatus.PENDING, StackStatus.DEPLOYING, StackStatus.DELETING)
# What Coolify's status means (stacks/clients/coolify_status.py) → the cfadmin status that says
# the same; a starting service (a job queued or running) is not compared at all.
STATE_STACK_STATUS = {
    ServiceState.HEALTHY: StackStatus.RUNNING,
    ServiceState.STOPPED: StackStatus.STOPPED,
    ServiceState.UNHEALTHY: StackStatus.ERROR,
    ServiceState.DEGRADED: StackStatus.ERROR,
    ServiceState.UNKNOWN: StackStatus.ERROR,
}
# Coolify's status lags behind start and stop: a stack changed this recently is not compared.
STATUS_SETTLE_TIME = timedelta(minutes=2)
# Record fields compared with what cfadmin would write.
COMPARED_RECORD_FIELDS = ("status", "template", "project_uuid", "service_uuid", "domains")
DESCRIPTION_PATTERN = re.compile(r"^cfadmin stack (?P<tenant>[^/\s]+)/(?P<stack>\S+)")
RECORD_DRIFT = (DriftKind.MISSING_RECORD, DriftKind.RECORD_DIFFERS)


@dataclass
class Drift:
    kind: str
    tenant: str
    stack_name: str
    message: str
    repairs: list[str] = field(default_factory=list)
    stack_id: int | None = None
    service_uuid: str = ""
    record_id: str = ""

    @property
    def target(self) -> str:
        """What a repair of this drift acts on: a stack, a Coolify service or a record."""
        if self.stack_id is not None:
            return f"stack:{self.stack_id}"
        if self.service_uuid:
            return f"service:{self.service_uuid}"
        return f"record:{self.record_id}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "target": self.target}


def coolify_status(service: dict[str, Any]) -> str | None:
    """The cfadmin status a Coolify service's state means (error for anything unhealthy or
    degraded), or None while it is starting (a job is queued or running)."""
    status = interpret(service.get("status"))
    if status.in_motion:
        return None
    return STATE_STACK_STATUS[status.state]


def service_identity(service: dict[str, Any]) -> dict[str, str]:
    """Tenant, stack and template of a service cfadmin made: from its compose labels (needs
    the token's read:sensitive), else from the description cfadmin gave it. Empty if neither."""
    for labels in _compose_labels(str(service.get("docker_compose_raw") or "")):
        if f"{LABEL_PREFIX}stack" in labels:
            return {
                "tenant": str(labels.get(f"{LABEL_PREFIX}tenant", "")),
                "stack_name": str(labels[f"{LABEL_PREFIX}stack"]),
                "template": str(labels.get(f"{LABEL_PREFIX}template", "")),
                "template_version": str(labels.get(f"{LABEL_PREFIX}template-version", "")),
            }
    match = DESCRIPTION_PATTERN.match(str(service.get("description") or ""))
    if match:
        return {"tenant": match["tenant"], "stack_name": match["stack"], "template": ""}
    return {}


def _compose_labels(compose: str) -> list[dict[str, Any]]:
    """Each compose service's labels as a mapping; anything malformed is skipped (other tools
    write to Coolify too, and one odd service must not stop the comparison)."""
    if not compose:
        return []
    try:
        parsed = yaml.safe_load(compose)
    except yaml.YAMLError:
        return []
    services = parsed.get("services") if isinstance(parsed, dict) else None
    found = []
    for spec in services.values() if isinstance(services, dict) else []:
        labels = spec.get("labels") if isinstance(spec, dict) else None
        if isinstance(labels, list):
            labels = dict(
                str(item).split("=", 1) for item in labels if isinstance(item, str) and "=" in item
            )
        if isinstance(labels, dict):
            found.append(labels)
    return found


def find_drift(
    services: list[dict[str, Any]], records: list[dict[str, Any]]
) -> tuple[list[Drift], int]:
    """The drift between cfadmin's live stacks and Coolify's services and PocketBase's records,
    and how many stacks were compared. Stacks with an operation in flight are left alone."""
    by_uuid = {str(s.get("uuid")): s for s in services}
    records_by_key = {(r.get("tenant"), r.get("stack_name")): r for r in records}
    live = list(
        Stack.objects.exclude(status=StackStatus.DELETED)
        .select_related("tenant")
        .prefetch_related(
            Prefetch("domains", queryset=StackDomain.objects.filter(released_at__isnull=True))
        )
    )
    # In-flight operations are few; no IN clause with thousands of stack ids.
    busy = set(Operation.objects.in_flight().values_list("stack_id", flat=True))
    # Records with a change still in the PocketBase outbox are on their way, not drifting.
    syncing = set(pending_records())
    drift: list[Drift] = []
    checked = 0
    for stack in live:
        if stack.pk in busy or stack.status in UNSETTLED:
            continue
        checked += 1
        key = (stack.tenant.slug, stack.stack_name)
        drift += [
            d
            for d in _stack_drift(stack, by_uuid, records_by_key.get(key))
            if key not in syncing or d.kind not in RECORD_DRIFT
        ]

    known_uuids = {s.coolify_service_uuid: s for s in live if s.coolify_service_uuid}
    live_by_key = {(s.tenant.slug, s.stack_name): s for s in live}
    for uuid, service in by_uuid.items():
        if uuid in known_uuids:
            continue
        identity = service_identity(service)
        if not identity:
            continue  # not made by cfadmin: the health check lists foreign services
        owner = live_by_key.get((identity["tenant"], identity["stack_name"]))
        if owner is not None and (not owner.coolify_service_uuid or owner.status in UNSETTLED):
            continue  # an interrupted create: the stack's next attempt adopts it by name
        status = service.get("status") or "no status"
        seen = f"Coolify runs service {service.get('name')} ({uuid}, {status})"
        if owner is not None:
            drift.append(
                Drift(
                    DriftKind.ORPHAN_SERVICE,
                    identity["tenant"],
                    identity["stack_name"],
                    f"{seen}, a duplicate: stack {owner} uses service "
                    f"{owner.coolify_service_uuid}. Delete the duplicate in Coolify.",
                    [],
                    service_uuid=uuid,
                )
            )
            continue
        drift.append(
            Drift(
                DriftKind.ORPHAN_SERVICE,
                identity["tenant"],
                identity["stack_name"],
                f"{seen} that cfadmin does not know.",
                [Repair.IMPORT],
                service_uuid=uuid,
            )
        )
    for key, record in records_by_key.items():
        if key in live_by_key or key in syncing:
            continue
        uuid = str(record.get("service_uuid") or "")
        importable = uuid in by_uuid and uuid not in known_uuids
        if importable:
            where = "its Coolify service exists."
        elif uuid in known_uuids:
            where = f"its service belongs to stack {known_uuids[uuid]}: a stale duplicate."
        else:
            where = "Coolify has no service for it."
        drift.append(
            Drift(
                DriftKind.ORPHAN_RECORD,
                str(key[0]),
                str(key[1]),
                f"PocketBase has a record (status {record.get('status') or '?'}) for a stack "
                f"cfadmin does not know; {where}",
                [Repair.IMPORT] if importable else [Repair.DELETE_RECORD],
                service_uuid=uuid if importable else "",
                record_id=str(record.get("id", "")),
            )
        )
    # Importing a service also covers its orphan record: one row per stack is enough.
    service_orphans = {d.service_uuid for d in drift if d.kind == DriftKind.ORPHAN_SERVICE}
    drift = [
        d
        for d in drift
        if not (d.kind == DriftKind.ORPHAN_RECORD and d.service_uuid in service_orphans)
    ]
    return drift, checked


def _stack_drift(
    stack: Stack, by_uuid: dict[str, dict[str, Any]], record: dict[str, Any] | None
) -> list[Drift]:
    found: list[Drift] = []

    def add(kind: str, message: str, repairs: list[str]) -> None:
        found.append(
            Drift(
                kind,
                stack.tenant.slug,
                stack.stack_name,
                message,
                repairs,
                stack_id=stack.pk,
                service_uuid=stack.coolify_service_uuid,
                record_id=str((record or {}).get("id", "")),
            )
        )

    if stack.coolify_service_uuid and stack.is_isolated:
        _isolated_drift(stack, by_uuid.get(stack.coolify_service_uuid), add)
    elif stack.coolify_service_uuid:
        service = by_uuid.get(stack.coolify_service_uuid)
        if service is None:
            add(
                DriftKind.MISSING_SERVICE,
                f"cfadmin says {stack.get_status_display().lower()}, but Coolify has no service "
                f"{stack.coolify_service_uuid}. Redeploy to create it again, or delete the stack.",
                [Repair.MARK_ERROR] if stack.status != StackStatus.ERROR else [],
            )
        else:
            observed = coolify_status(service)
            settled = timezone.now() - stack.updated_at >= STATUS_SETTLE_TIME
            both_down = stack.status == StackStatus.ERROR and observed == StackStatus.STOPPED
            if observed is not None and observed != stack.status and settled and not both_down:
                add(
                    DriftKind.SERVICE_STATUS,
                    f"cfadmin says {stack.status}, Coolify says {service.get('status') or '?'}. "
                    "Coolify's status can lag or be wrong: check the stack's URL first.",
                    [Repair.TAKE_COOLIFY_STATUS],
                )
    if record is None:
        add(
            DriftKind.MISSING_RECORD,
            "PocketBase has no agent_stacks record for this stack.",
            [Repair.PUSH_RECORD],
        )
    else:
        expected = pocketbase_record(stack, stack.status)
        differences = [
            f"{name}: {record.get(name)!r} ≠ {expected[name]!r}"
            for name in COMPARED_RECORD_FIELDS
            if _normalised(record.get(name)) != _normalised(expected[name])
        ]
        if differences:
            add(
                DriftKind.RECORD_DIFFERS,
                "PocketBase record differs (PocketBase ≠ cfadmin): " + "; ".join(differences),
                [Repair.PUSH_RECORD],
            )
    return found


def _isolated_drift(stack: Stack, service: dict[str, Any] | None, add: Any) -> None:
    """A stack isolated on purpose (containment) is stopped and has no domains in Coolify:
    that is not drift, and nothing is offered that would bring it back. Only a service that
    runs again (started outside cfadmin) or is gone is reported, with no repair: isolate it
    again, release it or delete it."""
    if service is None:
        add(
            DriftKind.MISSING_SERVICE,
            f"{stack} is isolated, but Coolify has no service {stack.coolify_service_uuid}. "
            "Delete the stack, or release and redeploy it.",
            [],
        )
        return
    observed = coolify_status(service)
    if observed is not None and observed != StackStatus.STOPPED:
        add(
            DriftKind.SERVICE_STATUS,
            f"{stack} is isolated, but Coolify says {service.get('status') or '?'}: someone "
            "started it outside cfadmin. Isolate it again (or release it).",
            [],
        )


def _normalised(value: Any) -> Any:
    """Unset is unset: PocketBase's null, "" and [] compare equal; lists in any order."""
    if isinstance(value, list):
        value = sorted(str(v) for v in value)
    return value or ""


def containers_running(coolify: CoolifyClient, stack: Stack, service_uuid: str) -> bool | None:
    """Whether the stack's main container runs, asked of Docker rather than of the stored
    status: Coolify's logs endpoint answers 400 "Container is not running." or 404 "Container
    not found." when it does not (ServicesController.php logs_by_uuid). None: cannot tell."""
    manifest = load_manifest(stack.template_name)
    main = next(iter(compose_service_names(manifest, stack.tenant.slug, stack.stack_name).values()))
    try:
        coolify.service_logs(service_uuid, main, lines=1)
    except ClientError as error:
        return False if error.status in (400, 404) else None
    return True
