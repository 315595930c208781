"""Server resources, measured: the runbook's `free`, `df`, `docker stats` and `du` on every
Coolify server (through SERVER_COMMAND), as three health checks whose details hold the figures;
`snapshot()` gives their latest stored results (the mass-failure triage's evidence)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.conf import settings

from ops.checks import Check
from ops.checks.resources_parse import (
    parse_df,
    parse_docker_stats,
    parse_du,
    parse_free,
    parse_loadavg,
    percent,
)
from ops.checks.resources_run import (
    DOCKER_STATS,
    MEMORY_AND_DISK,
    VOLUME_SIZES,
    ServerRun,
    run_everywhere,
    servers_of,
)
from ops.checks.resources_stacks import StackIndex, build_index
from ops.models import CheckStatus, HealthCheckResult

# A server's memory in use (total - available) at or above these is a warning / down.
MEMORY_WARN_PERCENT = 85
MEMORY_DOWN_PERCENT = 95
# A container using this much of its template's memory limit is a warning (the OOM killer is
# near: Docker kills it at 100 %).
CONTAINER_MEMORY_WARN_PERCENT = 90
# Lists in a result's details hold at most this many rows (the largest first); totals count all.
TOP = 10
# Docker's own files in /var/lib/docker/volumes, not volumes.
NOT_VOLUMES = frozenset({"metadata.db", "backingFsBlockDev"})
# A check leaves itself this much of its timeout to summarise after the commands.
MARGIN = 0.5

Result = tuple[str, str, dict[str, Any]]
_RANK = {CheckStatus.OK: 0, CheckStatus.WARNING: 1, CheckStatus.DOWN: 2}


def prepare() -> StackIndex:
    """What the checks read from the database: every stack's container and volume names."""
    return build_index()


def _index(ctx: Any) -> StackIndex:
    # ops.health may have read it before the threads started (HealthContext.prepared).
    prepared = getattr(ctx, "prepared", None) or {}
    index = prepared.get("resources")
    return index if index is not None else prepare()


def _runs(ctx: Any, command: str) -> list[ServerRun]:
    with ctx.coolify() as coolify:
        servers = servers_of(coolify)
    return run_everywhere(servers, command, max(0.5, ctx.timeout - MARGIN))


def human(size: int | None) -> str:
    value = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _worst(statuses: list[str]) -> str:
    return max(statuses, key=lambda status: _RANK[status], default=CheckStatus.OK)


def _unmeasured(runs: list[ServerRun], measured: set[str], summary: str) -> Result | None:
    """DOWN when no server could be measured (or Coolify lists none: WARNING)."""
    if not runs:
        return CheckStatus.WARNING, "Coolify lists no server to measure", {"servers": []}
    if measured:
        return None
    failures = "; ".join(f"{run.server} ({run.error or 'no output'})" for run in runs)
    details = {"servers": [_server_row(run) for run in runs]}
    return CheckStatus.DOWN, f"Could not measure {summary}: {failures}", details


def _server_row(run: ServerRun, **figures: Any) -> dict[str, Any]:
    return {"server": run.server, "host": run.host, "error": run.error, **figures}


def _failed_note(runs: list[ServerRun], measured: set[str]) -> tuple[list[str], list[str]]:
    """Sentences for the servers not measured, and a WARNING when there are any."""
    failed = [
        f"{run.server}: not measured ({run.error or 'no output'})"
        for run in runs
        if run.server not in measured
    ]
    return failed, [CheckStatus.WARNING] if failed else []


# --- server_resources --------------------------------------------------------------------------


def memory_status(used_percent: float) -> str:
    if used_percent >= MEMORY_DOWN_PERCENT:
        return CheckStatus.DOWN
    if used_percent >= MEMORY_WARN_PERCENT:
        return CheckStatus.WARNING
    return CheckStatus.OK


def disk_status(used_percent: float) -> str:
    if used_percent >= settings.HEALTHCHECK_DISK_DOWN_PERCENT:
        return CheckStatus.DOWN
    if used_percent >= settings.HEALTHCHECK_DISK_WARN_PERCENT:
        return CheckStatus.WARNING
    return CheckStatus.OK


def check_server_resources(ctx: Any) -> Result:
    runs = _runs(ctx, MEMORY_AND_DISK)
    return summarise_servers(runs)


def summarise_servers(runs: list[ServerRun]) -> Result:
    """Memory and disk per server against the thresholds; the worst server sets the status."""
    rows, measured, statuses, notes = [], set(), [], []
    for run in runs:
        memory, disks = parse_free(run.stdout), parse_df(run.stdout)
        if memory is None and not disks:
            rows.append(_server_row(run))
            continue
        measured.add(run.server)
        disks.sort(key=lambda disk: -disk["used_percent"])
        if memory is not None:
            statuses.append(memory_status(memory["used_percent"]))
            if statuses[-1] != CheckStatus.OK:
                notes.append(f"{run.server} memory at {memory['used_percent']}%")
        for disk in disks:
            statuses.append(disk_status(disk["used_percent"]))
            if statuses[-1] != CheckStatus.OK:
                notes.append(f"{run.server} disk {disk['mount']} at {disk['used_percent']}%")
        rows.append(
            _server_row(
                run,
                memory=memory,
                load=parse_loadavg(run.stdout),
                disks=disks[:TOP],
                disks_total=len(disks),
            )
        )
    unmeasured = _unmeasured(runs, measured, "memory and disk")
    if unmeasured:
        return unmeasured
    failed, failed_status = _failed_note(runs, measured)
    details = {"command": MEMORY_AND_DISK, "servers": rows, "problems": notes + failed}
    summary = ", ".join(
        f"{row['server']} memory {row['memory']['used_percent'] if row['memory'] else '?'}%"
        + (
            f", disk {row['disks'][0]['mount']} {row['disks'][0]['used_percent']}%"
            if row["disks"]
            else ""
        )
        for row in rows
        if row["server"] in measured
    )
    message = "; ".join(notes + failed) or f"Servers: {summary}"
    return _worst(statuses + failed_status), message, details


# --- container_resources -----------------------------------------------------------------------


def check_container_resources(ctx: Any) -> Result:
    index = _index(ctx)
    return summarise_containers(_runs(ctx, DOCKER_STATS), index)


def summarise_containers(runs: list[ServerRun], index: StackIndex) -> Result:
    """Each container's CPU and memory against its template's limits (cfadmin's containers);
    the others are listed apart. A container at CONTAINER_MEMORY_WARN_PERCENT is a warning."""
    rows, others, servers, measured = [], [], [], set()
    for run in runs:
        stats = parse_docker_stats(run.stdout)
        if run.error and not stats:
            servers.append(_server_row(run))
            continue
        measured.add(run.server)
        servers.append(_server_row(run, containers=len(stats)))
        for stat in stats:
            owner = index.containers.get(stat["name"])
            if owner is None:
                others.append({"server": run.server, **stat})
                continue
            limit, cpus, cpu = owner.memory_limit, owner.cpus, stat["cpu_percent"]
            rows.append(
                {
                    "server": run.server,
                    "name": stat["name"],
                    "tenant": owner.tenant,
                    "stack": owner.stack,
                    "template": owner.template,
                    "service": owner.service,
                    "cpu_percent": cpu,
                    "cpu_limit_percent": round(cpus * 100, 1) if cpus else None,
                    "cpu_of_limit_percent": round(cpu / cpus, 1)
                    if cpu is not None and cpus
                    else None,
                    "memory_used": stat["memory_used"],
                    "memory_limit": limit,
                    "memory_of_limit_percent": percent(stat["memory_used"], limit)
                    if stat["memory_used"] is not None and limit
                    else None,
                }
            )
    unmeasured = _unmeasured(runs, measured, "containers")
    if unmeasured:
        return unmeasured
    rows.sort(key=lambda row: (-(row["memory_of_limit_percent"] or 0), row["name"]))
    others.sort(key=lambda row: (-(row["memory_used"] or 0), row["name"]))
    near = [r for r in rows if (r["memory_of_limit_percent"] or 0) >= CONTAINER_MEMORY_WARN_PERCENT]
    failed, failed_status = _failed_note(runs, measured)
    details = {
        "command": DOCKER_STATS,
        "servers": servers,
        "containers": rows[:TOP],
        "near_memory_limit": near[:TOP],
        "stacks": _by_stack(rows)[:TOP],
        "others": others[:TOP],
        "totals": {
            "containers": len(rows) + len(others),
            "cfadmin_containers": len(rows),
            "near_memory_limit": len(near),
            "cpu_percent": round(sum(r["cpu_percent"] or 0 for r in rows + others), 1),
            "memory_used": sum(r["memory_used"] or 0 for r in rows + others),
            "cfadmin_memory_used": sum(r["memory_used"] or 0 for r in rows),
        },
        "problems": failed,
    }
    if near:
        names = ", ".join(
            f"{r['tenant']}/{r['stack']} {r['service']} at {r['memory_of_limit_percent']}% of "
            f"{human(r['memory_limit'])}"
            for r in near[:TOP]
        )
        message = f"{len(near)} container(s) near their memory limit: {names}"
        return CheckStatus.WARNING, "; ".join([message, *failed]), details
    message = (
        f"{len(rows)} cfadmin container(s) within their limits"
        f" ({human(details['totals']['cfadmin_memory_used'])} in use), {len(others)} other(s)"
    )
    return _worst(failed_status), "; ".join([message, *failed]), details


def _by_stack(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stacks: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        entry = stacks.setdefault(
            (row["tenant"], row["stack"]),
            {
                "tenant": row["tenant"],
                "stack": row["stack"],
                "template": row["template"],
                "server": row["server"],
                "cpu_percent": 0.0,
                "memory_used": 0,
                "containers": 0,
            },
        )
        entry["cpu_percent"] = round(entry["cpu_percent"] + (row["cpu_percent"] or 0), 2)
        entry["memory_used"] += row["memory_used"] or 0
        entry["containers"] += 1
    return sorted(stacks.values(), key=lambda entry: (-entry["memory_used"], entry["stack"]))


# --- volume_sizes ------------------------------------------------------------------------------


def check_volume_sizes(ctx: Any) -> Result:
    index = _index(ctx)
    return summarise_volumes(_runs(ctx, VOLUME_SIZES), index)


def summarise_volumes(runs: list[ServerRun], index: StackIndex) -> Result:
    """Volume sizes summed per tenant and per stack (kept volumes of deleted stacks count for
    their tenant); volumes named like cfadmin's that no stack owns are listed as unmatched."""
    tenants: dict[str, dict[str, Any]] = {}
    stacks: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    unmatched, servers, measured = [], [], set()
    totals = {"volumes": 0, "bytes": 0, "cfadmin_bytes": 0, "unmatched_bytes": 0, "other_bytes": 0}
    for run in runs:
        sizes = [row for row in parse_du(run.stdout) if row["name"] not in NOT_VOLUMES]
        # du exits 1 when one entry is unreadable: the others' sizes still count.
        if not sizes and run.error:
            servers.append(_server_row(run))
            continue
        measured.add(run.server)
        servers.append(_server_row(run, volumes=len(sizes)))
        for row in sizes:
            totals["volumes"] += 1
            totals["bytes"] += row["bytes"]
            owner = index.volumes.get(row["name"])
            if owner is None:
                cfadmin_like = "_cf-agent-" in row["name"]
                key = "unmatched_bytes" if cfadmin_like else "other_bytes"
                totals[key] += row["bytes"]
                if cfadmin_like:
                    unmatched.append({"server": run.server, **row})
                continue
            totals["cfadmin_bytes"] += row["bytes"]
            tenant = tenants.setdefault(
                owner.tenant, {"tenant": owner.tenant, "bytes": 0, "volumes": 0, "stacks": 0}
            )
            tenant["bytes"] += row["bytes"]
            tenant["volumes"] += 1
            stack = stacks[(owner.tenant, owner.stack)]
            if not stack:
                tenant["stacks"] += 1
                stack.update(tenant=owner.tenant, stack=owner.stack, kept=owner.deleted, bytes=0)
            stack["bytes"] += row["bytes"]
    unmeasured = _unmeasured(runs, measured, "volume sizes")
    if unmeasured:
        return unmeasured
    ranked = sorted(tenants.values(), key=lambda entry: (-entry["bytes"], entry["tenant"]))
    unmatched.sort(key=lambda row: (-row["bytes"], row["name"]))
    failed, failed_status = _failed_note(runs, measured)
    details = {
        "command": VOLUME_SIZES,
        "servers": servers,
        "tenants": ranked[:TOP],
        "tenants_total": len(ranked),
        "stacks": sorted(stacks.values(), key=lambda s: (-s["bytes"], s["stack"]))[:TOP],
        "unmatched": unmatched[:TOP],
        "totals": {**totals, "unmatched_volumes": len(unmatched)},
        "problems": failed,
    }
    message = f"Volumes: {human(totals['cfadmin_bytes'])} for {len(ranked)} tenant(s)"
    if ranked:
        message += f" (largest: {ranked[0]['tenant']} {human(ranked[0]['bytes'])})"
    if unmatched:
        message += f"; {len(unmatched)} cf-agent volume(s) of no stack"
    return _worst(failed_status), "; ".join([message, *failed]), details


# --- registry and evidence ---------------------------------------------------------------------


def configured() -> bool:
    return bool(settings.SERVER_COMMAND.strip())


CHECKS: list[Check] = [
    # Only with SERVER_COMMAND: without it the commands would measure cfadmin's own machine and
    # report it as every Coolify server (`make run` sets it to the simulator's stand-in shell).
    Check("server_resources", check_server_resources, critical=False, enabled=configured),
    Check("container_resources", check_container_resources, critical=False, enabled=configured),
    Check("volume_sizes", check_volume_sizes, critical=False, enabled=configured),
]
CHECK_NAMES = [spec.name for spec in CHECKS]


def snapshot() -> dict[str, Any]:
    """The latest stored result of each resources check ({name: None} when it never ran); no
    remote call."""
    latest: dict[str, Any] = {}
    for name in CHECK_NAMES:
        result = HealthCheckResult.objects.filter(check_name=name).order_by("-checked_at", "-id")
        row = result.first()
        latest[name] = (
            None
            if row is None
            else {
                "status": row.status,
                "message": row.message,
                "checked_at": row.checked_at.isoformat(),
                "details": row.details,
            }
        )
    return latest
