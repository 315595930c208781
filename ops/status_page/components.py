"""The platform's components as the public sees them, and each one's state now: from its health
check's latest result (never its message, which may name tenants or stacks), or "under
maintenance" while an announced maintenance window is on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models.expressions import RawSQL

from ops.models import CheckStatus, HealthCheckResult


class ComponentState(models.TextChoices):
    """A component's state in status-page words, worst last (`severity`)."""

    OPERATIONAL = "operational", "Operational"
    MAINTENANCE = "maintenance", "Under maintenance"
    UNKNOWN = "unknown", "No recent data"
    DEGRADED = "degraded", "Degraded performance"
    OUTAGE = "outage", "Outage"

    @property
    def severity(self) -> int:
        return list(ComponentState).index(self)

    @property
    def css_class(self) -> str:
        """The state's colour (ops/static/ops/status_page.css)."""
        return f"sp-state-{self.value}"


STATE_OF_STATUS = {
    CheckStatus.OK: ComponentState.OPERATIONAL,
    CheckStatus.WARNING: ComponentState.DEGRADED,
    CheckStatus.DOWN: ComponentState.OUTAGE,
}


@dataclass(frozen=True)
class Component:
    """A part of the platform customers depend on, and the health check that watches it."""

    key: str
    name: str
    check_name: str  # ops.health.CHECKS
    description: str


COMPONENTS: tuple[Component, ...] = (
    Component("coolify", "Coolify API", "coolify_api", "Deploys and manages the agent stacks."),
    Component("pocketbase", "PocketBase", "pocketbase", "Accounts and agent stack records."),
    Component("stacks", "Agent stacks", "active_stacks", "The customers' running agent stacks."),
)
CHECK_NAMES = tuple(component.check_name for component in COMPONENTS)


def stale_after() -> timedelta:
    """A result older than this says nothing about now (three missed runs of the checks)."""
    return timedelta(minutes=3 * settings.HEALTHCHECK_INTERVAL_MINUTES)


def latest_results(check_names: Iterable[str] = CHECK_NAMES) -> dict[str, HealthCheckResult]:
    """Each check's newest result (status and time only), in one query: per check an index
    seek with LIMIT 1 on (check_name, -checked_at), joined with UNION ALL, each part wrapped in
    its own SELECT (SQLite allows no LIMIT in a compound's parts)."""
    newest = HealthCheckResult.objects.order_by("-checked_at", "-id").values("pk")
    compiled = [newest.filter(check_name=name)[:1].query.sql_with_params() for name in check_names]
    if not compiled:
        return {}
    union = " UNION ALL ".join(
        f"SELECT * FROM ({sql}) AS part{i}" for i, (sql, _) in enumerate(compiled)
    )
    params = tuple(param for _, part_params in compiled for param in part_params)
    rows = HealthCheckResult.objects.filter(pk__in=RawSQL(union, params)).only(
        "id", "check_name", "status", "checked_at"
    )
    return {row.check_name: row for row in rows}


def state_of(
    result: HealthCheckResult | None, *, maintenance: bool, now: datetime
) -> ComponentState:
    """Under maintenance while a window is on; else the latest result's state, unknown when
    there is none or it is stale."""
    if maintenance:
        return ComponentState.MAINTENANCE
    if result is None or now - result.checked_at > stale_after():
        return ComponentState.UNKNOWN
    return STATE_OF_STATUS.get(result.status, ComponentState.UNKNOWN)


def overall(states: Iterable[ComponentState], *, open_incidents: int = 0) -> tuple[str, str]:
    """The page's headline (css key, words) from its components' states; with a public
    incident open, never "all systems operational"."""
    states = list(states)
    if not states:
        return ComponentState.UNKNOWN.value, "Status unknown"
    worst = max(states, key=lambda state: state.severity)
    if worst == ComponentState.OPERATIONAL:
        if open_incidents:
            return ComponentState.DEGRADED.value, "We are looking into an issue"
        return worst.value, "All systems operational"
    if worst == ComponentState.OUTAGE:
        down = sum(state == ComponentState.OUTAGE for state in states)
        return worst.value, "Major outage" if down == len(states) else "Partial outage"
    if worst == ComponentState.DEGRADED:
        return worst.value, "Degraded performance"
    if worst == ComponentState.MAINTENANCE:
        return worst.value, "Scheduled maintenance in progress"
    return worst.value, "Some systems have no recent data"
