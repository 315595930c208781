"""Automatic checks behind checklist items. Each returns (passed, evidence), or (None,
evidence) when a machine cannot tell and a person must look (e.g. external probes are off).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime

from cfadmin import audit, jobs
from cfadmin.models import AuditAction, AuditEvent
from cfadmin.queued_once import request_once
from ops import probes_incident
from ops.health import run_checks
from ops.maintenance import probes as maintenance
from ops.models import ChecklistRun, CheckStatus, Probe
from ops.netprobe import ProbeRefused, ProbeSkipped, resolve, serves_https
from ops.status_page import maintenance as status_page
from stacks.choices import StackStatus
from stacks.clients.coolify_status import interpret
from stacks.clients.errors import ClientError, NotFound
from stacks.compose import compose_service_names, load_manifest
from stacks.provisioning import get_coolify, get_pocketbase, service_statuses

ProbeResult = tuple[bool | None, dict[str, Any]]


def _stack(run: ChecklistRun) -> Any:
    if run.stack is None:
        raise LookupError("this checklist run is not for a stack")
    return run.stack


def _domains(run: ChecklistRun, *, live_only: bool = True) -> list[str]:
    domains = _stack(run).domains.all()
    if live_only:
        domains = domains.filter(released_at__isnull=True)
    return list(domains.values_list("domain", flat=True))


def service_present(run: ChecklistRun) -> ProbeResult:
    uuid = _stack(run).coolify_service_uuid
    if not uuid:
        return False, {"error": "the stack has no Coolify service uuid"}
    # The status read shared with provisioning's polls (one GET /services per round for every
    # stack): Coolify allows 200 calls a minute, and every deploy runs this probe.
    with get_coolify(attempts=1) as coolify:
        read = service_statuses(coolify, max_age=settings.PROVISION_POLL_INTERVAL)
    if uuid not in read.statuses:
        return False, {"service_uuid": uuid, "error": "Coolify lists no such service"}
    status = interpret(read.statuses[uuid])
    return status.up, {
        "service_uuid": uuid,
        "status": status.raw,
        "meaning": status.state.label,
        "read_at": read.began_at.isoformat(),
    }


def service_gone(run: ChecklistRun) -> ProbeResult:
    uuid = _stack(run).coolify_service_uuid
    if not uuid:
        return True, {"note": "the stack never had a Coolify service"}
    with get_coolify(attempts=1) as coolify:
        try:
            service = coolify.get_service(uuid)
        except NotFound:
            return True, {"service_uuid": uuid, "answer": "404 Service not found."}
    return False, {"service_uuid": uuid, "status": service.get("status")}


def domain_resolves(run: ChecklistRun) -> ProbeResult:
    domains = _domains(run)
    if not domains:
        return True, {"note": "the stack has no domains"}
    evidence: dict[str, Any] = {}
    for domain in domains:
        try:
            target = resolve(domain)
        except ProbeSkipped as skipped:
            return None, {"note": str(skipped)}
        except ProbeRefused as refused:  # it resolves, but not to a public address
            evidence[domain] = str(refused)
            return False, evidence
        except OSError as exc:
            evidence[domain] = f"does not resolve: {exc}"
            return False, evidence
        evidence[domain] = f"{target.address}:{target.port}"
    return True, evidence


def _https_results(domains: list[str]) -> dict[str, tuple[bool, dict[str, Any]]]:
    """Each domain's HTTPS answer; raises ProbeSkipped when probing would leave the machine,
    ProbeRefused when a domain resolves to an address that is not public."""
    return {
        domain: serves_https(domain, timeout=settings.HEALTHCHECK_TIMEOUT) for domain in domains
    }


def https_serves(run: ChecklistRun) -> ProbeResult:
    domains = _domains(run)
    if not domains:
        return True, {"note": "the stack has no domains"}
    try:
        results = _https_results(domains)
    except ProbeSkipped as skipped:
        return None, {"note": str(skipped)}
    except ProbeRefused as refused:  # a customer's domain must be on the internet
        return False, {"error": str(refused)}
    return all(ok for ok, _ in results.values()), {d: facts for d, (_, facts) in results.items()}


def domain_not_served(run: ChecklistRun) -> ProbeResult:
    domains = _domains(run, live_only=False)
    if not domains:
        return True, {"note": "the stack had no domains"}
    try:
        results = _https_results(domains)
    except ProbeSkipped as skipped:
        return None, {"note": str(skipped)}
    except ProbeRefused as refused:  # not probed: whether it still serves, a person must look
        return None, {"note": str(refused)}
    return not any(ok for ok, _ in results.values()), {
        d: facts for d, (_, facts) in results.items()
    }


def record_running(run: ChecklistRun) -> ProbeResult:
    stack = _stack(run)
    with get_pocketbase(attempts=1) as pocketbase:
        record = pocketbase.find_record(stack.tenant.slug, stack.stack_name)
    if record is None:
        return False, {"error": f"no agent_stacks record for {stack}"}
    facts = {
        key: record.get(key) for key in ("id", "tenant", "stack_name", "status", "service_uuid")
    }
    return record.get("status") == StackStatus.RUNNING, facts  # the record mirrors the stack


def record_gone(run: ChecklistRun) -> ProbeResult:
    stack = _stack(run)
    with get_pocketbase(attempts=1) as pocketbase:
        record = pocketbase.find_record(stack.tenant.slug, stack.stack_name)
    if record is None:
        return True, {"note": f"no agent_stacks record for {stack}"}
    return False, {"id": record.get("id"), "status": record.get("status")}


STARTUP_WORDS = ("started", "listening", "ready", "running on")


def logs_show_startup(run: ChecklistRun) -> ProbeResult:
    """Each container's log shows it started. Coolify's logs endpoint finds a container by its
    compose service key (`<key>-<service uuid>`), answers 404 "Container not found." when there
    is none and 400 "Container is not running." when it is down (ServicesController.php
    logs_by_uuid)."""
    stack = _stack(run)
    if not stack.coolify_service_uuid:
        return False, {"error": "the stack has no Coolify service uuid"}
    manifest = load_manifest(stack.template_name)
    names = compose_service_names(manifest, stack.tenant.slug, stack.stack_name).values()
    evidence = {}
    with get_coolify(attempts=1) as coolify:
        for name, container in zip(names, stack.server_names().containers, strict=True):
            try:
                logs = coolify.service_logs(stack.coolify_service_uuid, name, lines=50)
            except ClientError as error:
                if error.transient:
                    raise
                evidence[name] = f"{container}: {error.message}"
                return False, evidence
            evidence[name] = logs[-1000:]
            if not any(word in logs.lower() for word in STARTUP_WORDS):
                return False, evidence
    return True, evidence


def from_health_check(
    name: str, passing: tuple[str, ...] = (CheckStatus.OK,)
) -> Callable[[ChecklistRun], ProbeResult]:
    """A probe that runs the health check `name` now: passed when its status is one of
    `passing`; "cannot tell" when this installation has no such check (or it is off)."""

    def probe(run: ChecklistRun) -> ProbeResult:
        outcomes = run_checks([name])
        if not outcomes:
            return None, {"note": f"the health check {name!r} does not run here"}
        [outcome] = outcomes
        return outcome.status in passing, {
            "status": outcome.status,
            "message": outcome.message,
            "details": outcome.details,
        }

    return probe


MEASURED = (CheckStatus.OK, CheckStatus.WARNING)

PROBES: dict[str, Callable[[ChecklistRun], ProbeResult]] = {
    Probe.SERVICE_PRESENT: service_present,
    Probe.DOMAIN_RESOLVES: domain_resolves,
    Probe.HTTPS_SERVES: https_serves,
    Probe.RECORD_RUNNING: record_running,
    Probe.LOGS_SHOW_STARTUP: logs_show_startup,
    Probe.SERVICE_GONE: service_gone,
    Probe.DOMAIN_NOT_SERVED: domain_not_served,
    Probe.RECORD_GONE: record_gone,
    Probe.COOLIFY_API: from_health_check("coolify_api"),
    Probe.POCKETBASE_HEALTH: from_health_check("pocketbase"),
    Probe.ACTIVE_STACKS: from_health_check("active_stacks"),
    Probe.DISK_USAGE: from_health_check("disk_usage"),
    # Inside an incident (issue 15): the incident actions' outcomes.
    Probe.EVIDENCE_CAPTURED: probes_incident.evidence_captured,
    Probe.STACKS_ISOLATED: probes_incident.stacks_isolated,
    Probe.STACKS_STOPPED: probes_incident.stacks_stopped,
    Probe.KEYS_ROTATED: probes_incident.keys_rotated,
    Probe.PATTERN_IDENTIFIED: probes_incident.pattern_identified,
    Probe.VOLUME_EXISTS: probes_incident.volume_exists,
    # Measured on the servers (ops/checks/resources.py, backups.py). Resources measured with a
    # warning are still measured; a container near its limit or an old backup fails the item.
    Probe.SERVER_RESOURCES: from_health_check("server_resources", MEASURED),
    Probe.CONTAINER_RESOURCES: from_health_check("container_resources"),
    Probe.VOLUME_SIZES: from_health_check("volume_sizes", MEASURED),
    Probe.POCKETBASE_BACKUP: from_health_check("pocketbase_backup"),
    # On the status page (issue 16).
    Probe.MAINTENANCE_ANNOUNCED: status_page.maintenance_announced,
    Probe.STATUS_UPDATE_POSTED: status_page.status_update_posted,
    # By the maintenance window's automated checks (issue 17).
    Probe.MAINTENANCE_BACKUP: maintenance.backup_taken,
    Probe.MAINTENANCE_STACKS_RUNNING: maintenance.stacks_running,
    Probe.MAINTENANCE_MONITORED: maintenance.monitored,
}


def run_probe(name: str, run: ChecklistRun) -> ProbeResult:
    """Never raises: a probe that cannot run says why, as evidence of a failure."""
    try:
        return PROBES[name](run)
    except LookupError as exc:
        return None, {"note": str(exc)}
    except ClientError as error:
        return False, {"error": str(error)}
    except OSError as exc:
        return False, {"error": f"{type(exc).__name__}: {exc}"}


# --- on demand: one queued at a time per checklist run -----------------------------------------

PROBES_JOB = "checklist_probes"
# A requested run of the probes not done after this long lost its worker.
PROBES_REQUEST_STALE_AFTER = timedelta(minutes=10)


def request_probes(
    run: ChecklistRun,
    *,
    actor: Any,
    enqueue: Callable[..., None] | None = None,
    stale_after: timedelta = PROBES_REQUEST_STALE_AFTER,
) -> AuditEvent:
    """Queue the run's automatic checks, unless a request for them made within `stale_after`
    is still queued or running (AlreadyQueued says by whom and when); the request goes into
    the audit trail."""
    return request_once(
        PROBES_JOB,
        actor=actor,
        label="Automatic checks",
        served=lambda moment: probes_ran_since(run, moment),
        queue=lambda: (enqueue or jobs.enqueue)("ops.tasks.run_checklist_probes_task", run.pk),
        stale_after=stale_after,
        target=run,
    )


def record_probes_ran(run: ChecklistRun, *, started_at: datetime, ran: int | None) -> None:
    """The worker's note that a run of the probes, begun at `started_at`, has ended (`ran`:
    how many it checked; None if it stopped on an error)."""
    audit.record(
        actor=None,
        action=AuditAction.OPERATION_RESULT,
        target=run,
        message="Automatic checks stopped by an error"
        if ran is None
        else f"Automatic checks ran ({ran} checked)",
        changes={"job": PROBES_JOB, "started_at": started_at.isoformat(), "ran": ran},
    )


def probe_events(run: ChecklistRun, action: str, since: datetime) -> QuerySet[AuditEvent]:
    """The run's probe requests (OPERATION) or ends (OPERATION_RESULT) recorded since `since`."""
    return AuditEvent.objects.filter(
        action=action,
        changes__job=PROBES_JOB,
        target_type=ContentType.objects.get_for_model(ChecklistRun),
        target_id=str(run.pk),
        occurred_at__gte=since,
    )


def probes_ran_since(run: ChecklistRun, moment: datetime) -> bool:
    """Whether a run of the probes that began at or after `moment` has ended."""
    ended = probe_events(run, AuditAction.OPERATION_RESULT, moment).values_list(
        "changes", flat=True
    )
    return any(
        (started := parse_datetime(str(changes.get("started_at", "")))) is not None
        and started >= moment
        for changes in ended
    )
