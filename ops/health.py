"""Health checks: the runbook's "run every morning", run by a schedule and `manage.py healthcheck`.

Checks run concurrently, each with its own short timeout, so one dead dependency never delays
the others: the whole run takes about as long as the slowest check, at most HEALTHCHECK_TIMEOUT.
Everything a check needs from the database is read first, in the calling thread; the threads
only talk to remote services. The HTTPS check probes only the domains due this run, many at
once, within the same timeout (ops/https_domains.py); record() stores each result with its
daily rollup, and the domains' states beside the HTTPS result.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cfadmin import jobs
from cfadmin.models import AuditEvent
from cfadmin.queued_once import request_once
from ops import https_domains, incidents
from ops.checks import Check, backups, resources
from ops.models import CheckStatus, HealthCheckResult, Outage, count_result
from ops.notifications import events as notify
from stacks.choices import StackStatus
from stacks.clients.coolify import CoolifyClient
from stacks.clients.coolify_status import interpret
from stacks.clients.errors import ClientError
from stacks.clients.pacing import INTERACTIVE
from stacks.clients.pocketbase import PocketBaseClient
from stacks.models import Stack
from stacks.provisioning import get_coolify, get_pocketbase


@dataclass
class CheckOutcome:
    name: str
    status: str
    message: str
    critical: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    latency_ms: int = 0
    # What record() stores beside the result (https_domains: each probed domain's state).
    observations: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "critical": self.critical,
            "message": self.message,
            "latency_ms": self.latency_ms,
            "details": self.details,
        }


@dataclass
class HealthContext:
    """What the checks need, gathered before the threads start."""

    timeout: float
    running_stacks: dict[str, str]  # Coolify service uuid -> "tenant/stack" expected running
    known_services: set[str]  # every live stack's service uuid
    domains: list[str]  # the live domains due for an HTTPS probe, most overdue first
    live_domains: list[str] | None = None  # every live domain (None: `domains`)
    domain_states: dict[str, https_domains.KnownState] = field(default_factory=dict)
    # Filled by a check for record() (keyed by check name): see CheckOutcome.observations.
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What a check module read from the database before the threads started, by module
    # ("resources": ops.checks.resources.prepare(), every stack's container and volume names).
    prepared: dict[str, Any] = field(default_factory=dict)

    def coolify(self) -> CoolifyClient:
        # A check reports, not retries; its few calls a run go as interactive, so a large
        # rollout holding the background budget never makes a check time out into an outage.
        return get_coolify(timeout=self.timeout, attempts=1, priority=INTERACTIVE)

    def pocketbase(self) -> PocketBaseClient:
        return get_pocketbase(timeout=self.timeout, attempts=1)


Result = tuple[str, str, dict[str, Any]]  # status, message, details


def check_coolify_api(ctx: HealthContext) -> Result:
    with ctx.coolify() as coolify:
        version = coolify.version()  # needs the `read` ability: proves the token too
    return CheckStatus.OK, f"Coolify API OK (version {version})", {"version": version}


def check_pocketbase(ctx: HealthContext) -> Result:
    with ctx.pocketbase() as pocketbase:
        pocketbase.healthy()
        pocketbase.ensure_collection()  # an authenticated call: the login or token still works
    return CheckStatus.OK, "PocketBase OK (healthy, service login works)", {}


def check_active_stacks(ctx: HealthContext) -> Result:
    with ctx.coolify() as coolify:
        services = {s["uuid"]: s for s in coolify.list_services()}
    statuses = {uuid: interpret(s.get("status")) for uuid, s in services.items()}
    running = {uuid for uuid, status in statuses.items() if status.up}
    not_running = sorted(
        f"{name} ({statuses[uuid].state.label}: {statuses[uuid]})"
        if uuid in services
        else f"{name} (missing)"
        for uuid, name in ctx.running_stacks.items()
        if uuid not in running
    )
    unknown = sorted(
        f"{s.get('name')} ({uuid})"
        for uuid, s in services.items()
        if uuid not in ctx.known_services
    )
    details = {
        "expected_running": len(ctx.running_stacks),
        "running_in_coolify": len(running),
        "not_running": not_running,
        "unknown_to_cfadmin": unknown,
    }
    message = (
        f"Active stacks: {len(running)} running in Coolify, "
        f"{len(ctx.running_stacks)} expected by cfadmin"
    )
    if not_running or unknown:
        parts = []
        if not_running:
            parts.append(f"not running: {', '.join(not_running)}")
        if unknown:
            parts.append(f"unknown to cfadmin: {', '.join(unknown)}")
        return CheckStatus.WARNING, f"{message}; " + "; ".join(parts), details
    return CheckStatus.OK, message, details


def check_coolify_servers(ctx: HealthContext) -> Result:
    with ctx.coolify() as coolify:
        servers = coolify.list_servers()
    rows = [
        {
            "name": s.get("name"),
            "uuid": s.get("uuid"),
            "reachable": bool((s.get("settings") or {}).get("is_reachable", True)),
            "usable": bool((s.get("settings") or {}).get("is_usable", True)),
        }
        for s in servers
    ]
    bad = [r["name"] for r in rows if not (r["reachable"] and r["usable"])]
    if not rows or len(bad) == len(rows):
        return CheckStatus.DOWN, "No reachable, usable Coolify server", {"servers": rows}
    if bad:
        return (
            CheckStatus.WARNING,
            f"Servers not reachable/usable: {', '.join(bad)}",
            {"servers": rows},
        )
    return CheckStatus.OK, f"{len(rows)} server(s) reachable and usable", {"servers": rows}


DF_LINE = re.compile(r"^(?P<fs>\S+)\s+\d+\s+\d+\s+\d+\s+(?P<use>\d+)%\s+(?P<mount>\S+)$")


def parse_df(output: str) -> list[dict[str, Any]]:
    """`df -P` lines → [{filesystem, use_percent, mount}]."""
    rows = []
    for line in output.splitlines():
        match = DF_LINE.match(line.strip())
        if match:
            rows.append(
                {
                    "filesystem": match["fs"],
                    "use_percent": int(match["use"]),
                    "mount": match["mount"],
                }
            )
    return rows


def check_disk_usage(ctx: HealthContext) -> Result:
    command = settings.HEALTHCHECK_DISK_COMMAND
    completed = subprocess.run(
        shlex.split(command), capture_output=True, text=True, timeout=ctx.timeout, check=False
    )
    rows = parse_df(completed.stdout)
    if completed.returncode != 0 or not rows:
        return (
            CheckStatus.DOWN,
            (
                f"`{command}` failed (exit {completed.returncode}): "
                f"{completed.stderr.strip()[:200] or 'no df output'}"
            ),
            {},
        )
    worst = max(rows, key=lambda row: row["use_percent"])
    details = {"command": command, "filesystems": rows}
    message = f"Disk {worst['mount']} at {worst['use_percent']}%"
    return resources.disk_status(worst["use_percent"]), message, details


def check_https_domains(ctx: HealthContext) -> Result:
    """Probe the due domains concurrently within the check's time; summarise every live one."""
    started = timezone.now()
    run = https_domains.probe_due(
        ctx.domains,
        budget=max(0.0, ctx.timeout - HTTPS_MARGIN),
        probe_timeout=ctx.timeout / 2,
        workers=settings.HTTPS_PROBE_WORKERS,
    )
    ctx.observations["https_domains"] = run.observations
    live = ctx.domains if ctx.live_domains is None else ctx.live_domains
    return https_domains.summarise(live, ctx.domain_states, run, started)


# The HTTPS check stops probing this long before its timeout: time to summarise.
HTTPS_MARGIN = 0.3


CHECKS: list[Check] = [
    Check("coolify_api", check_coolify_api, critical=True),
    Check("pocketbase", check_pocketbase, critical=True),
    Check("active_stacks", check_active_stacks, critical=False),
    Check("coolify_servers", check_coolify_servers, critical=True),
    Check("disk_usage", check_disk_usage, critical=False),
    Check(
        "https_domains",
        check_https_domains,
        critical=False,
        enabled=lambda: settings.HEALTHCHECK_HTTPS,
    ),
    *backups.CHECKS,
    *resources.CHECKS,
]
CHECK_NAMES = [check.name for check in CHECKS]


def build_context(timeout: float, checks: list[Check] | None = None) -> HealthContext:
    live = Stack.objects.exclude(status=StackStatus.DELETED).exclude(coolify_service_uuid="")
    running = {
        s.coolify_service_uuid: str(s)
        for s in live.filter(status=StackStatus.RUNNING).select_related("tenant")
    }
    ctx = HealthContext(
        timeout=timeout,
        running_stacks=running,
        known_services=set(live.values_list("coolify_service_uuid", flat=True)),
        domains=[],
    )
    if checks is None or any(check.name == "https_domains" for check in checks):
        ctx.live_domains = https_domains.live_domains()
        ctx.domain_states = https_domains.known_states()
        ctx.domains = https_domains.due_domains(ctx.live_domains, ctx.domain_states, timezone.now())
    if checks is None or any(check.name in resources.CHECK_NAMES for check in checks):
        ctx.prepared["resources"] = resources.prepare()
    return ctx


def _timed(check: Check, ctx: HealthContext) -> CheckOutcome:
    started = time.monotonic()
    try:
        status, message, details = check.function(ctx)
    except ClientError as error:
        status, message, details = CheckStatus.DOWN, str(error), {}
    except subprocess.TimeoutExpired:
        status, message, details = CheckStatus.DOWN, f"no answer within {ctx.timeout:g}s", {}
    except Exception as exc:  # a check must report, never crash the run
        status, message, details = CheckStatus.DOWN, f"{type(exc).__name__}: {exc}", {}
    return CheckOutcome(
        check.name,
        status,
        message,
        check.critical,
        details,
        int((time.monotonic() - started) * 1000),
        ctx.observations.get(check.name, {}),
    )


def run_checks(
    names: list[str] | None = None, *, timeout: float | None = None
) -> list[CheckOutcome]:
    timeout = settings.HEALTHCHECK_TIMEOUT if timeout is None else timeout
    checks = [c for c in CHECKS if (names is None or c.name in names) and c.enabled()]
    ctx = build_context(timeout, checks)
    executor = ThreadPoolExecutor(max_workers=max(1, len(checks)), thread_name_prefix="healthcheck")
    started = time.monotonic()
    futures = {executor.submit(_timed, check, ctx): check for check in checks}
    # A little grace over the per-call timeout for the check's own work.
    wait(futures, timeout=timeout + 1.0)
    outcomes = []
    for future, check in futures.items():
        if future.done():
            outcomes.append(future.result())
        else:
            outcomes.append(
                CheckOutcome(
                    check.name,
                    CheckStatus.DOWN,
                    f"no answer within {timeout:g}s",
                    check.critical,
                    {},
                    int((time.monotonic() - started) * 1000),
                )
            )
    executor.shutdown(wait=False, cancel_futures=True)
    return outcomes


def record(outcomes: list[CheckOutcome]) -> list[HealthCheckResult]:
    """Store results, each counted in its day's rollup in the same transaction; store what a
    check observed beside its result (HTTPS states); open an outage on the first failure,
    close it on the next success."""
    now = timezone.now()
    stored = []
    with transaction.atomic():
        for outcome in outcomes:
            stored.append(
                HealthCheckResult.objects.create(
                    check_name=outcome.name,
                    status=outcome.status,
                    critical=outcome.critical,
                    message=outcome.message[:2000],
                    details=outcome.details,
                    latency_ms=outcome.latency_ms,
                    checked_at=now,
                )
            )
            count_result(outcome.name, outcome.status, now)
            if outcome.name == "https_domains":
                https_domains.record_observations(outcome.observations, now)
            open_outage = Outage.objects.open().filter(check_name=outcome.name).first()
            failing = outcome.status == CheckStatus.DOWN  # a warning is not an outage
            if failing and open_outage is None:
                outage = Outage.objects.create(
                    check_name=outcome.name,
                    started_at=now,
                    first_message=outcome.message[:2000],
                    last_message=outcome.message[:2000],
                )
                notify.outage_started(outage)
            elif failing:
                Outage.objects.filter(pk=open_outage.pk).update(
                    failures=open_outage.failures + 1, last_message=outcome.message[:2000]
                )
            elif open_outage is not None:
                Outage.objects.filter(pk=open_outage.pk).update(ended_at=now)
                open_outage.ended_at = now
                incidents.record_outage_ended(open_outage)
                notify.outage_ended(open_outage)
    from ops.response import auto_incidents  # it reads ops' models; imported late

    auto_incidents.after_health_record(stored)
    return stored


def run_and_record(names: list[str] | None = None) -> dict[str, Any]:
    outcomes = run_checks(names)
    record(outcomes)
    return report(outcomes)


def report(outcomes: list[CheckOutcome]) -> dict[str, Any]:
    critical_down = [o.name for o in outcomes if o.critical and o.status == CheckStatus.DOWN]
    return {
        "ok": not critical_down,
        "checked_at": timezone.now().isoformat(),
        "critical_down": critical_down,
        "checks": [o.as_dict() for o in outcomes],
    }


# --- on demand -------------------------------------------------------------------------------

HEALTH_RUN_JOB = "health_checks"
# A requested run not done after this long lost its worker: another may be asked for.
HEALTH_REQUEST_STALE_AFTER = timedelta(minutes=10)


def request_health_run(actor: Any, *, enqueue: Callable[..., None] | None = None) -> AuditEvent:
    """Queue "Run health checks now", unless a run asked for earlier is still queued or
    running (AlreadyQueued says by whom and when); the request goes into the audit trail."""
    return request_once(
        HEALTH_RUN_JOB,
        actor=actor,
        label="Health checks",
        served=health_run_began_since,
        queue=lambda: (enqueue or jobs.enqueue)("ops.tasks.run_health_checks_task"),
        stale_after=HEALTH_REQUEST_STALE_AFTER,
    )


def health_run_began_since(moment: datetime) -> bool:
    """Whether a run that began at or after `moment` has recorded its results.

    One run records all its results with the same `checked_at`, its end; the run began at the
    latest its slowest check's latency before that. A scheduled run that was under way when
    the request came does not count: it may have checked before whatever made someone ask.
    """
    slowest: dict[datetime, int] = {}
    for checked_at, latency_ms in HealthCheckResult.objects.filter(
        checked_at__gte=moment
    ).values_list("checked_at", "latency_ms"):
        slowest[checked_at] = max(slowest.get(checked_at, 0), latency_ms)
    return any(
        checked_at - timedelta(milliseconds=latency) >= moment
        for checked_at, latency in slowest.items()
    )
