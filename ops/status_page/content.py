"""What the public status page shows, built once for the HTML page and the JSON: components with
their state and uptime bars, public incidents (open, and resolved in the last few days) with
their public updates newest first, announced maintenance windows not yet over.

Only public columns are read (`only`/`values`): an incident's public title, times and status,
its PublicUpdate messages; never its internal title, summary, resolution, timeline, tenants or
stacks, and never a health result's message. Every list is bounded, so the page costs the same
few queries however many incidents and updates there are."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, IntegerField, Prefetch, Value, When
from django.urls import reverse
from django.utils import timezone

from ops.models import Incident, MaintenanceWindow, PublicStatus, PublicUpdate
from ops.status_page import components as parts
from ops.status_page.uptime import UPTIME_DAYS, UptimeBars, uptime_bars

# Resolved public incidents stay on the page this long.
RECENTLY_RESOLVED = timedelta(days=7)
INCIDENTS_SHOWN = 25  # open ones first
UPDATES_PER_INCIDENT = 20
MAINTENANCE_SHOWN = 10


@dataclass(frozen=True)
class ComponentView:
    key: str
    name: str
    description: str
    state: parts.ComponentState
    uptime: UptimeBars


@dataclass(frozen=True)
class UpdateView:
    id: int
    status: PublicStatus
    message: str
    posted_at: datetime


@dataclass(frozen=True)
class IncidentView:
    id: int
    title: str
    opened_at: datetime
    resolved_at: datetime | None
    updates: list[UpdateView]  # newest first

    @property
    def anchor(self) -> str:
        return f"incident-{self.id}"

    @property
    def status(self) -> PublicStatus:
        """Resolved once the incident is; else what its latest public update says."""
        if self.resolved_at is not None:
            return PublicStatus.RESOLVED
        return self.updates[0].status if self.updates else PublicStatus.INVESTIGATING


@dataclass(frozen=True)
class MaintenanceView:
    id: int
    title: str
    message: str
    starts_at: datetime
    ends_at: datetime
    is_on: bool

    @property
    def anchor(self) -> str:
        return f"maintenance-{self.id}"


@dataclass(frozen=True)
class StatusPage:
    title: str
    url: str
    generated_at: datetime
    overall: tuple[str, str]  # (state key, headline)
    components: list[ComponentView]
    incidents: list[IncidentView]  # open
    resolved: list[IncidentView]  # resolved in the last RECENTLY_RESOLVED
    maintenance: list[MaintenanceView] = field(default_factory=list)

    @property
    def maintenance_on(self) -> list[MaintenanceView]:
        return [window for window in self.maintenance if window.is_on]

    @property
    def maintenance_upcoming(self) -> list[MaintenanceView]:
        return [window for window in self.maintenance if not window.is_on]


def page_url() -> str:
    """The page's absolute address (links in the feeds and the JSON)."""
    return settings.CFADMIN_BASE_URL + reverse("status_page")


def maintenance_windows(now: datetime) -> list[MaintenanceView]:
    """Announced, not cancelled windows not over yet, soonest first (one query)."""
    rows = (
        MaintenanceWindow.objects.announced()
        .upcoming_or_current(now)
        .order_by("starts_at", "id")
        .only("id", "title", "public_message", "starts_at", "ends_at", "cancelled_at")
    )[:MAINTENANCE_SHOWN]
    return [
        MaintenanceView(
            row.id, row.title, row.public_message, row.starts_at, row.ends_at, row.is_on(now)
        )
        for row in rows
    ]


def public_incidents(now: datetime) -> list[IncidentView]:
    """Public incidents open now or resolved recently, open first then newest, each with its
    latest public updates (two queries: the incidents, their updates)."""
    updates = PublicUpdate.objects.only("id", "incident_id", "status", "message", "posted_at")
    rows = (
        Incident.objects.filter(public=True)
        .exclude(resolved_at__lt=now - RECENTLY_RESOLVED)
        .only("id", "public_title", "opened_at", "resolved_at")
        .annotate(
            resolved_first=Case(
                When(resolved_at__isnull=True, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("resolved_first", "-opened_at", "-id")
        .prefetch_related(
            Prefetch(
                "public_updates",
                queryset=updates.order_by("-posted_at", "-id")[:UPDATES_PER_INCIDENT],
                to_attr="shown_updates",
            )
        )
    )[:INCIDENTS_SHOWN]
    return [
        IncidentView(
            row.id,
            row.public_name,
            row.opened_at,
            row.resolved_at,
            [
                UpdateView(update.id, PublicStatus(update.status), update.message, update.posted_at)
                for update in row.shown_updates
            ],
        )
        for row in rows
    ]


def build(now: datetime | None = None) -> StatusPage:
    """Everything the page shows, evaluated (templates add no query): five queries."""
    now = now or timezone.now()
    maintenance = maintenance_windows(now)
    under_maintenance = any(window.is_on for window in maintenance)
    latest = parts.latest_results()
    bars = uptime_bars(parts.CHECK_NAMES, now)
    shown = [
        ComponentView(
            component.key,
            component.name,
            component.description,
            parts.state_of(
                latest.get(component.check_name), maintenance=under_maintenance, now=now
            ),
            bars[component.check_name],
        )
        for component in parts.COMPONENTS
    ]
    incidents = public_incidents(now)
    open_ = [incident for incident in incidents if incident.resolved_at is None]
    return StatusPage(
        title=settings.STATUS_PAGE_TITLE,
        url=page_url(),
        generated_at=now,
        overall=parts.overall((c.state for c in shown), open_incidents=len(open_)),
        components=shown,
        incidents=open_,
        resolved=[incident for incident in incidents if incident.resolved_at is not None],
        maintenance=maintenance,
    )


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _incident_json(incident: IncidentView, url: str) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "status": incident.status.value,
        "opened_at": _when(incident.opened_at),
        "resolved_at": _when(incident.resolved_at),
        "url": f"{url}#{incident.anchor}",
        "updates": [
            {
                "id": update.id,
                "status": update.status.value,
                "message": update.message,
                "posted_at": _when(update.posted_at),
            }
            for update in incident.updates
        ],
    }


def as_json(page: StatusPage) -> dict[str, Any]:
    """The page as JSON (`<path>index.json`): the same content, plain values."""
    return {
        "page": {
            "title": page.title,
            "url": page.url,
            "generated_at": _when(page.generated_at),
        },
        "status": {"indicator": page.overall[0], "description": page.overall[1]},
        "components": [
            {
                "key": component.key,
                "name": component.name,
                "state": component.state.value,
                "state_label": component.state.label,
                "uptime_days": UPTIME_DAYS,
                "uptime": component.uptime.uptime,
                "days": [
                    {"day": bar.day.isoformat(), "uptime": bar.uptime, "state": bar.state}
                    for bar in component.uptime.bars
                ],
            }
            for component in page.components
        ],
        "incidents": [_incident_json(incident, page.url) for incident in page.incidents],
        "resolved_incidents": [_incident_json(incident, page.url) for incident in page.resolved],
        "maintenance": [
            {
                "id": window.id,
                "title": window.title,
                "message": window.message,
                "starts_at": _when(window.starts_at),
                "ends_at": _when(window.ends_at),
                "in_progress": window.is_on,
                "url": f"{page.url}#{window.anchor}",
            }
            for window in page.maintenance
        ],
    }
