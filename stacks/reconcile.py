"""Reconcile: compare what cfadmin believes with what Coolify runs and what PocketBase
records, report the drift, and repair it on request. Import adopts a stack that exists only
in Coolify (or in PocketBase with its Coolify service still there).

Knows the clients and the models; the admin, the command and the tasks only call it. Every
repair looks at the remote side again before it acts, so an old report never does harm.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import yaml
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.utils import timezone

from cfadmin import audit, jobs
from cfadmin.models import AuditAction, AuditEvent
from cfadmin.queued_once import request_once
from stacks.catalog import template_names
from stacks.choices import DriftKind, Repair, StackStatus
from stacks.clients.coolify import CoolifyClient
from stacks.clients.coolify_status import ServiceState, interpret
from stacks.clients.errors import ClientError, NotFound
from stacks.clients.pocketbase import PocketBaseClient
from stacks.compose import LABEL_PREFIX, compose_service_names, load_manifest, service_key_for
from stacks.models import (
    InvalidTransition,
    Operation,
    ReconcileRun,
    Stack,
    StackDomain,
    StackSecret,
)
from stacks.pocketbase_outbox import (
    Outcome,
    deliver_record,
    pending_records,
    pocketbase_record,
    queue_upsert,
)
from stacks.provisioning import get_coolify, get_pocketbase
from stacks.services import create_tenant
from tenants.models import Tenant

logger = logging.getLogger(__name__)

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
KEEP_RUNS_DAYS = 30
RECORD_DRIFT = (DriftKind.MISSING_RECORD, DriftKind.RECORD_DIFFERS)


class RepairRefused(Exception):
    """The repair does not apply (any more); the message says why and what to do."""


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

    if stack.coolify_service_uuid:
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


def _normalised(value: Any) -> Any:
    """Unset is unset: PocketBase's null, "" and [] compare equal; lists in any order."""
    if isinstance(value, list):
        value = sorted(str(v) for v in value)
    return value or ""


# --- running it -------------------------------------------------------------------------------

RECONCILE_JOB = "reconcile"
# A requested comparison not done after this long lost its worker: another may be asked for.
REQUEST_STALE_AFTER = timedelta(minutes=10)


def request_reconcile(actor: Any, *, enqueue: Callable[..., None] | None = None) -> AuditEvent:
    """Queue "Reconcile now", unless one asked for earlier is still queued or running
    (AlreadyQueued says by whom and when): each comparison lists every Coolify service."""
    return request_once(
        RECONCILE_JOB,
        actor=actor,
        label="Reconcile",
        served=lambda moment: ReconcileRun.objects.filter(
            started_at__gte=moment, finished_at__isnull=False
        ).exists(),
        queue=lambda: (enqueue or jobs.enqueue)(
            "stacks.tasks.reconcile_task", getattr(actor, "pk", None)
        ),
        stale_after=REQUEST_STALE_AFTER,
    )


def run_reconcile(
    *,
    actor: Any = None,
    note: str = "",
    coolify: CoolifyClient | None = None,
    pocketbase: PocketBaseClient | None = None,
) -> ReconcileRun:
    """Compare now and store the result (also when a remote side cannot be read)."""
    run = ReconcileRun.objects.create(requested_by_repr=audit.actor_label(actor)[:150], note=note)
    try:
        coolify = coolify or get_coolify()
        pocketbase = pocketbase or get_pocketbase()
        services = coolify.list_services()
        records = pocketbase.list_records()
        drift, checked = find_drift(services, records)
        by_uuid = {s.get("uuid"): s for s in services}
        drift = [d for d in drift if not _status_lags(d, by_uuid, coolify)]
    except ClientError as error:
        run.error = str(error)
        logger.warning("reconcile could not compare: %s", run.error)
    except Exception as error:  # a report must end, even on a bug or odd data
        run.error = f"{type(error).__name__} while comparing; the worker log has the details."
        logger.exception("reconcile failed")
    else:
        run.drift = [d.as_dict() for d in drift]
        run.stacks_checked = checked
    run.finished_at = timezone.now()
    run.save(update_fields=["error", "drift", "stacks_checked", "finished_at"])
    ReconcileRun.objects.filter(
        started_at__lt=timezone.now() - timedelta(days=KEEP_RUNS_DAYS)
    ).delete()
    return run


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


def _status_lags(drift: Drift, services: dict[str, dict[str, Any]], coolify: CoolifyClient) -> bool:
    """A running stack that Coolify calls stopped while its container runs: after a restart
    Coolify reads `exited` until its next container check (StartService stops first), so this
    is the status lagging, not drift. One call, only for such a row."""
    if drift.kind != DriftKind.SERVICE_STATUS or drift.stack_id is None:
        return False
    service = services.get(drift.service_uuid)
    stack = Stack.objects.select_related("tenant").filter(pk=drift.stack_id).first()
    if service is None or stack is None or stack.status != StackStatus.RUNNING:
        return False
    if not interpret(service.get("status")).stopped:
        return False
    return containers_running(coolify, stack, drift.service_uuid) is True


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
    try:
        if kind == Repair.PUSH_RECORD:
            return _push_record(stack, actor=actor, pocketbase=pocketbase)
        if kind == Repair.TAKE_COOLIFY_STATUS:
            return _take_coolify_status(stack, actor=actor, coolify=coolify, pocketbase=pocketbase)
        return _mark_missing(stack, actor=actor, coolify=coolify, pocketbase=pocketbase)
    except InvalidTransition:
        raise RepairRefused(f"{stack}'s status changed meanwhile; reconcile again.") from None


def _push_record(stack: Stack, *, actor: Any, pocketbase: PocketBaseClient) -> str:
    # Through the outbox: a change of the record still queued there must not be written after
    # this one (it delivers the newest state only).
    queue_upsert(stack, stack.status)
    delivery = deliver_record(stack.tenant.slug, stack.stack_name, pocketbase)
    if delivery.error is not None:
        raise delivery.error  # still queued when PocketBase did not answer: retried later
    if delivery.outcome == Outcome.BUSY:
        message = f"Queued cfadmin's record for PocketBase (status {stack.status})."
    else:
        message = f"Wrote the PocketBase record from cfadmin (status {stack.status})."
    audit.record(
        actor=actor, action=AuditAction.UPDATE, target=stack, message=f"Reconcile: {message}"
    )
    return message


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
    _push_record(stack, actor=actor, pocketbase=pocketbase)
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
    _push_record(stack, actor=actor, pocketbase=pocketbase)
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


# --- import -------------------------------------------------------------------------------------


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
        _push_record(stack, actor=actor, pocketbase=pocketbase)
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
