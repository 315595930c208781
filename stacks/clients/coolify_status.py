"""What a Coolify service status string means: the one place cfadmin decides it.

Coolify computes a service's status on every read (`Service::getStatusAttribute` in
app/Models/Service.php, v4.3.11): `starting:unhealthy` while a start/restart job's activity is
queued or in progress (`Service::isStarting`), otherwise the aggregate of the stored container
statuses of its applications and databases (`ContainerStatusAggregator::resolveStatus` in
app/Services/ContainerStatusAggregator.php): `degraded:unhealthy`, `starting:unknown`,
`running:healthy|unhealthy|unknown`, `paused:unknown`, bare `exited`, and
`<state>:<health>:excluded` (or `unknown:unknown:excluded`) when every container is excluded.
Builds before beta.445 also said `exited:unhealthy` and `:` for a service without containers.

Provisioning, reconcile, health checks and probes all read statuses through `interpret()`.
No Django here: the client layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ServiceState(StrEnum):
    """What cfadmin means by a Coolify status, in the words support staff use."""

    HEALTHY = "healthy"  # running; every healthcheck passes, or there is none to report
    UNHEALTHY = "unhealthy"  # running, but a container's healthcheck fails
    STARTING = "starting"  # a start/restart job is queued or running, or containers are created
    STOPPED = "stopped"  # every container exited (or none was ever started)
    DEGRADED = "degraded"  # some up and some down, restarting, crash-looping, dead or paused
    UNKNOWN = "unknown"  # nothing Coolify can say (no containers, all excluded, or unreadable)

    @property
    def label(self) -> str:
        return STATE_LABELS[self]


STATE_LABELS = {
    ServiceState.HEALTHY: "running and healthy",
    ServiceState.UNHEALTHY: "running but unhealthy",
    ServiceState.STARTING: "starting",
    ServiceState.STOPPED: "stopped",
    ServiceState.DEGRADED: "degraded",
    ServiceState.UNKNOWN: "unknown",
}

# The first part of Coolify's string (`ContainerStatusAggregator::resolveStatus`) → our state.
_BY_COOLIFY_STATE = {
    "starting": ServiceState.STARTING,
    "created": ServiceState.STARTING,
    "restarting": ServiceState.DEGRADED,  # a single container's status; aggregated as degraded
    "degraded": ServiceState.DEGRADED,
    "paused": ServiceState.DEGRADED,  # not serving, and not stopped by anyone through cfadmin
    "dead": ServiceState.DEGRADED,
    "removing": ServiceState.DEGRADED,
    "exited": ServiceState.STOPPED,
    "stopped": ServiceState.STOPPED,
}


@dataclass(frozen=True)
class ServiceStatus:
    """One status string read from Coolify, and what it means."""

    raw: str
    state: ServiceState
    health: str  # healthy / unhealthy / unknown / "" (Coolify's second part, as it said it)
    excluded: bool  # every container is excluded from Coolify's status checks

    @property
    def running(self) -> bool:
        """Containers are up (healthy or not)."""
        return self.state in (ServiceState.HEALTHY, ServiceState.UNHEALTHY)

    @property
    def up(self) -> bool:
        """Good enough to call a stack running: up and no healthcheck failing."""
        return self.state == ServiceState.HEALTHY

    @property
    def stopped(self) -> bool:
        return self.state == ServiceState.STOPPED

    @property
    def in_motion(self) -> bool:
        """On its way somewhere (a job queued or running): not an answer yet."""
        return self.state == ServiceState.STARTING

    def __str__(self) -> str:
        return self.raw or "(no status)"


def interpret(raw: object) -> ServiceStatus:
    """`running:healthy` → HEALTHY; `exited` → STOPPED; `degraded:unhealthy` → DEGRADED; …

    `running:unknown` is HEALTHY: Coolify says so for containers without a healthcheck (and, per
    `aggregateFromContainers`, while a healthcheck is still in its start period), so there is
    nothing failing to report. Anything not in Coolify's vocabulary is UNKNOWN, never a guess.
    """
    text = str(raw or "").strip()
    parts = text.split(":")
    excluded = len(parts) > 2 and parts[2] == "excluded"
    coolify_state = parts[0].strip().lower()
    health = parts[1].strip().lower() if len(parts) > 1 else ""
    if coolify_state == "running":
        state = ServiceState.UNHEALTHY if health == "unhealthy" else ServiceState.HEALTHY
    else:
        state = _BY_COOLIFY_STATE.get(coolify_state, ServiceState.UNKNOWN)
    if excluded and coolify_state == "unknown":
        state = ServiceState.UNKNOWN
    return ServiceStatus(raw=text, state=state, health=health, excluded=excluded)
