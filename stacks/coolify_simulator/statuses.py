"""How Coolify turns container states into the status strings the API shows.

A port of app/Services/ContainerStatusAggregator.php (aggregateFromStrings/resolveStatus),
app/Traits/CalculatesExcludedStatus.php (appendExcludedSuffix), the container string of
app/Actions/Docker/GetContainersStatus.php:108-118 and Service::getStatusAttribute
(app/Models/Service.php:233-336).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def aggregate_from_strings(
    statuses: Iterable[str], max_restart_count: int = 0, preserve_restarting: bool = False
) -> str:
    """ContainerStatusAggregator::aggregateFromStrings — substring flags, then priorities."""
    statuses = list(statuses)
    max_restart_count = max(0, max_restart_count)  # negative counts are corrected to 0
    if not statuses:
        return "exited"
    running = restarting = unhealthy = unknown = exited = starting = paused = dead = False
    degraded = False
    for status in statuses:  # the elseif chain of :73-96, in its order
        if "degraded" in status:
            degraded = True
            if "unhealthy" in status:
                unhealthy = True
        elif "restarting" in status:
            restarting = True
        elif "running" in status:
            running = True
            if "unhealthy" in status:
                unhealthy = True
            if "unknown" in status:
                unknown = True
        elif "exited" in status:
            exited = True
        elif "created" in status or "starting" in status:
            starting = True
        elif "paused" in status:
            paused = True
        elif "dead" in status or "removing" in status:
            dead = True
    return resolve_status(
        running=running,
        restarting=restarting,
        unhealthy=unhealthy,
        unknown=unknown,
        exited=exited,
        starting=starting,
        paused=paused,
        dead=dead,
        degraded=degraded,
        max_restart_count=max_restart_count,
        preserve_restarting=preserve_restarting,
    )


def resolve_status(
    *,
    running: bool,
    restarting: bool,
    unhealthy: bool,
    unknown: bool,
    exited: bool,
    starting: bool,
    paused: bool,
    dead: bool,
    degraded: bool,
    max_restart_count: int = 0,
    preserve_restarting: bool = False,
) -> str:
    """ContainerStatusAggregator::resolveStatus — the priority state machine (:183-276)."""
    if degraded:  # 1. a degraded sub-resource degrades the stack
        return "degraded:unhealthy"
    if restarting:  # 2. restarting: kept per sub-resource, degraded for the stack
        return "restarting:unknown" if preserve_restarting else "degraded:unhealthy"
    if exited and max_restart_count > 0:  # 3. crash loop
        return "degraded:unhealthy"
    if running and exited:  # 4. some up, some down
        return "degraded:unhealthy"
    if running and starting:  # 5. some up, some still starting
        return "starting:unknown"
    if running:  # 6. health: unhealthy beats unknown beats healthy
        if unhealthy:
            return "running:unhealthy"
        if unknown:
            return "running:unknown"
        return "running:healthy"
    if dead:  # 7.
        return "degraded:unhealthy"
    if paused:  # 8.
        return "paused:unknown"
    if starting:  # 9.
        return "starting:unknown"
    return "exited"  # 10.


def container_string(state: str, health: str | None) -> str:
    """GetContainersStatus.php:108-118: `exited` stays bare; anything else gets
    `:{Health.Status ?? 'unknown'}` — so a healthcheck still in its start period gives
    `running:starting`, which aggregates to `running:healthy` (the real quirk)."""
    if state == "exited":
        return "exited"
    return f"{state}:{health or 'unknown'}"


def append_excluded_suffix(status: str) -> str:
    """CalculatesExcludedStatus::appendExcludedSuffix (app/Traits/CalculatesExcludedStatus.php)."""
    if status.startswith("degraded"):
        return "degraded:excluded"
    if status.startswith("paused"):
        return "paused:excluded"
    if status.startswith("starting"):
        return "starting:excluded"
    if status.startswith("exited"):
        return "exited"
    return f"{status}:excluded"


def sub_resource_status(container_strings: list[str], excluded: bool) -> str:
    """The status stored on a ServiceApplication/ServiceDatabase at a check
    (GetContainersStatus.php:538-604): aggregateFromStrings(preserveRestarting: true), or the
    `:excluded` form when its container is excluded (`exclude_from_hc: true` or `restart: no`,
    CalculatesExcludedStatus::getExcludedContainersFromDockerCompose)."""
    if excluded:
        return append_excluded_suffix(aggregate_from_strings(container_strings))
    return aggregate_from_strings(container_strings, preserve_restarting=True)


def _aggregate_resources(
    resources: list[dict[str, Any]], excluded_only: bool
) -> tuple[str | None, str | None, bool]:
    """Service::aggregateResourceStatuses (app/Models/Service.php:289-336)."""
    has_non_excluded = False
    strings = []
    for resource in resources:
        status = resource.get("status") or ""
        is_excluded = bool(resource.get("exclude_from_status")) or ":excluded" in status
        if excluded_only != is_excluded:
            continue
        if not excluded_only:
            has_non_excluded = True
        strings.append(status.split(":excluded", 1)[0])  # str()->before(':excluded')
    if not strings:
        return None, None, has_non_excluded
    parts = aggregate_from_strings(strings).split(":")
    return parts[0], (parts[1] if len(parts) > 1 else None), has_non_excluded


def service_status(starting: bool, resources: list[dict[str, Any]]) -> str:
    """Service::getStatusAttribute (app/Models/Service.php:233-268)."""
    if starting:  # isStarting(): newest Activity queued/in_progress
        return "starting:unhealthy"
    status, health, has_non_excluded = _aggregate_resources(resources, excluded_only=False)
    if not has_non_excluded and status is None and health is None:
        excluded_status, excluded_health, _ = _aggregate_resources(resources, excluded_only=True)
        if excluded_status and excluded_health:
            return f"{excluded_status}:{excluded_health}:excluded"
        if excluded_status is None and excluded_health is None:
            return "unknown:unknown:excluded"
        return "exited"
    if not health:  # no trailing colon when health is empty
        return status or ""
    return f"{status}:{health}"
