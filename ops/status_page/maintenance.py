"""Maintenance windows on the status page: saved and announced (the runbook's "announce
maintenance: 48h advance notice"), cancelled; and the two checklist probes the status page
verifies: the maintenance procedure's announcement and the outage procedure's status update."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from cfadmin import audit
from cfadmin.models import AuditAction
from ops.models import ChecklistRun, MaintenanceWindow, PublicUpdate
from ops.status_page import caching

ProbeResult = tuple[bool | None, dict[str, Any]]
# Windows a probe looks at (announced, not over yet): a handful in practice.
PROBE_WINDOWS = 20


def notice(window: MaintenanceWindow) -> timedelta | None:
    """How long before its start the window was announced (None: not announced)."""
    if window.announced_at is None:
        return None
    return window.starts_at - window.announced_at


def required_notice() -> timedelta:
    return timedelta(hours=settings.MAINTENANCE_NOTICE_HOURS)


def check_window(
    starts_at: datetime | None,
    ends_at: datetime | None,
    *,
    announce_now: bool,
    now: datetime | None = None,
) -> None:
    """A window's times, or a ValidationError naming the field and the rule."""
    if starts_at is None or ends_at is None:
        return  # the form has said which is missing
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": "Ends: must be after the start."})
    if announce_now and ends_at <= (now or timezone.now()):
        raise ValidationError(
            {"ends_at": "Ends: a window announced on the status page must not be over already."}
        )


def plan(window: MaintenanceWindow, *, actor: Any, announce_now: bool = True) -> MaintenanceWindow:
    """Save a new window (the admin audits its creation), owned by whoever planned it unless
    someone else was named; announced on the status page at once unless `announce_now` is
    off (it can be announced later)."""
    with transaction.atomic():
        if window.owner_id is None and hasattr(actor, "pk"):
            window.owner = actor
        window.save()
        if announce_now:
            announce(window, actor=actor)
    return window


def edited(window: MaintenanceWindow) -> None:
    """After an edit of a saved window: the status page shows the new text and times."""
    if window.announced_at is not None:
        caching.forget()


def announce(window: MaintenanceWindow, *, actor: Any) -> bool:
    """Show the window on the status page from now; False when it already was. A cancelled
    window or one already over cannot be announced."""
    now = timezone.now()
    if window.cancelled_at is not None:
        raise ValidationError({"announced_at": "A cancelled maintenance window is not announced."})
    if window.ends_at <= now:
        raise ValidationError({"announced_at": "This maintenance window is already over."})
    with transaction.atomic():
        changed = MaintenanceWindow.objects.filter(
            pk=window.pk, announced_at__isnull=True, cancelled_at__isnull=True
        ).update(announced_at=now)
        if not changed:
            return False
        window.announced_at = now
        ahead = notice(window)
        audit.record(
            actor=actor,
            action=AuditAction.UPDATE,
            target=window,
            message=f"Maintenance announced on the status page {_hours(ahead)} ahead: {window}",
            changes={"fields": {"announced_at": [None, now.isoformat()]}},
        )
        caching.forget()
    return True


def cancel(window: MaintenanceWindow, *, actor: Any) -> bool:
    """Cancel the window: off the status page (the feeds say it is cancelled). False when it
    already was."""
    now = timezone.now()
    with transaction.atomic():
        changed = MaintenanceWindow.objects.filter(pk=window.pk, cancelled_at__isnull=True).update(
            cancelled_at=now
        )
        if not changed:
            return False
        window.cancelled_at = now
        audit.record(
            actor=actor,
            action=AuditAction.UPDATE,
            target=window,
            message=f"Maintenance window cancelled: {window}",
            changes={"fields": {"cancelled_at": [None, now.isoformat()]}},
        )
        caching.forget()
    return True


def _hours(delta: timedelta | None) -> str:
    if delta is None:
        return "not"
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f}h" if hours >= 1 else f"{max(delta.total_seconds() // 60, 0):.0f} min"


def _window_facts(window: MaintenanceWindow) -> dict[str, Any]:
    return {
        "window": str(window),
        "window_id": window.pk,
        "announced_at": window.announced_at.isoformat() if window.announced_at else None,
        "starts_at": window.starts_at.isoformat(),
        "notice": _hours(notice(window)),
        "linked_to_this_run": bool(getattr(window, "linked", 0)),
    }


def maintenance_announced(run: ChecklistRun, now: datetime | None = None) -> ProbeResult:
    """Passed when an announced, not cancelled window not over yet was announced at least
    MAINTENANCE_NOTICE_HOURS before it starts. Windows linked to this run are judged when
    there are any (a late one linked to it fails the item); else any window counts."""
    now = now or timezone.now()
    windows = list(
        MaintenanceWindow.objects.announced()
        .upcoming_or_current(now)
        .annotate(
            linked=Case(
                When(checklist_run=run.pk, then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            )
        )
        .order_by("-linked", "starts_at", "id")[:PROBE_WINDOWS]
    )
    wanted = required_notice()
    rule = f"announced at least {settings.MAINTENANCE_NOTICE_HOURS}h before it starts"
    if not windows:
        return False, {
            "error": "no maintenance window is announced on the status page",
            "rule": rule,
        }
    judged = [window for window in windows if window.linked] or windows
    for window in judged:
        if notice(window) >= wanted:
            return True, {**_window_facts(window), "rule": rule}
    late = judged[0]
    return False, {
        **_window_facts(late),
        "rule": rule,
        "error": f"announced {_hours(notice(late))} ahead: too late",
    }


def status_update_posted(run: ChecklistRun) -> ProbeResult:
    """Passed when the run's incident is on the status page with a public update; a run
    outside an incident cannot tell (a person looks)."""
    if run.incident_id is None:
        raise LookupError("this checklist run is not inside an incident")
    incident = run.incident
    latest = (
        PublicUpdate.objects.filter(incident_id=incident.pk)
        .only("id", "status", "posted_at")
        .order_by("-posted_at", "-id")
        .first()
    )
    if not incident.public:
        return False, {"error": f"incident #{incident.pk} is not on the status page"}
    if latest is None:
        return False, {"error": f"no public update posted on incident #{incident.pk} yet"}
    return True, {
        "public_title": incident.public_title,
        "latest_update": latest.get_status_display(),
        "posted_at": latest.posted_at.isoformat(),
    }
