"""Paging: when an incident must be paged again, whom, and when a contact may be paged at all.

An open incident nobody acknowledged carries `next_page_at` (its respond-by time, then each
paged contact's own target). A 1-minute schedule (`reescalate_due`) pages the next contact in
priority order at that moment and says so on the timeline; any move out of "open"
(acknowledging, mitigating, resolving) clears it, reopening sets it again from then.
A business-hours-only contact is paged in business hours only (settings.BUSINESS_HOURS, the
clock its response target counts with): outside them its notifications are held."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ops.models import (
    DeliveryStatus,
    EscalationContact,
    Incident,
    IncidentEventKind,
    IncidentStatus,
    Notification,
    NotifyEvent,
)
from ops.notifications import delivery, rules

# Incidents re-escalated per pass of the schedule; the rest wait a minute.
REESCALATION_BATCH = 50
# Notifications that count as having paged a contact about an incident.
PAGING_EVENTS = (
    NotifyEvent.INCIDENT_OPENED,
    NotifyEvent.INCIDENT_ESCALATED,
    NotifyEvent.INCIDENT_REESCALATED,
)
ACTOR = "cfadmin"  # the timeline's and audit trail's label for what cfadmin does by itself


def not_before_for(contact: EscalationContact | None, now: datetime) -> datetime | None:
    """When a notification to `contact` may go out: None (now) unless the contact is reached
    in business hours only and `now` is outside them, then their next opening."""
    if contact is None or not contact.business_hours_only:
        return None
    opening = settings.BUSINESS_HOURS.add(now, 0)
    return opening if opening > now else None


def page_at_after_move(incident: Incident, status: str, now: datetime) -> datetime | None:
    """next_page_at after a status move: reopened, the issue-type contact's target counted
    from now; any other move is a response, so nobody is paged any more."""
    if status != IncidentStatus.OPEN or not incident.escalation_id:
        return None
    return incident.escalation.response_due(now)


def stop_paging(incident: Incident) -> int:
    """Someone responded: re-escalation pages not sent yet (held for a contact's hours) are
    cancelled, so nobody is woken next morning by a "not acknowledged" that is no longer true.
    Returns how many."""
    held = Notification.objects.filter(incident=incident, event=NotifyEvent.INCIDENT_REESCALATED)
    return delivery.cancel_waiting(held, "not sent: the incident was responded to first")


def schedule_first_page(incident: Incident) -> None:
    """A new incident: paged again at its respond-by time unless acknowledged by then."""
    open_ = incident.status == IncidentStatus.OPEN
    incident.next_page_at = incident.response_due_at if open_ else None
    Incident.objects.filter(pk=incident.pk).update(next_page_at=incident.next_page_at)


def paged_contacts(incident: Incident) -> QuerySet[Notification]:
    """The contacts a paging notification about the incident went to (sent, held, failed or
    suppressed alike), as a subquery of their ids."""
    return (
        Notification.objects.filter(
            incident=incident, event__in=PAGING_EVENTS, channel__contact__isnull=False
        )
        .order_by()
        .values("channel__contact_id")
    )


def next_contact(incident: Incident) -> tuple[EscalationContact | None, list[EscalationContact]]:
    """The first contact in priority order not yet paged (neither the issue type's contact nor
    one a page went to) that has a channel to be paged on, and the unpaged ones passed over for
    having none; in one query."""
    unpaged = (
        EscalationContact.objects.exclude(pk__in=paged_contacts(incident))
        .exclude(pk=incident.escalation_id)
        .annotate(reachable=rules.has_enabled_channel())
    )
    skipped = []
    for contact in unpaged:  # priority order
        if contact.reachable:
            return contact, skipped
        skipped.append(contact)
    return None, skipped


def _when(moment: datetime | None) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "—"


def page_next(incident_id: int, now: datetime) -> bool:
    """Re-escalate one incident whose next page is due: page the next contact, note it on the
    timeline, and set the next page to that contact's target (none when nobody is left).
    Claimed by a conditional update, so two workers page once."""
    from ops import incidents  # ops.incidents calls into this module

    incident = (
        Incident.objects.filter(
            pk=incident_id,
            status=IncidentStatus.OPEN,
            next_page_at__lte=now,
        )
        .select_related("escalation")
        .first()
    )
    if incident is None:
        return False
    missed = incident.next_page_at
    if not rules.pages_next_contact(incident.severity):
        # The rules do not re-escalate this incident: stop looking at it every minute.
        Incident.objects.filter(pk=incident.pk, next_page_at=missed).update(next_page_at=None)
        return False
    contact, skipped = next_contact(incident)
    due = contact.response_due(now) if contact is not None else None
    with transaction.atomic():
        claimed = Incident.objects.filter(
            pk=incident.pk, status=IncidentStatus.OPEN, next_page_at=missed
        ).update(next_page_at=due)
        if not claimed:
            return False
        incident.next_page_at = due
        passed = (
            f" ({', '.join(c.team for c in skipped)} passed over: no enabled channel)"
            if skipped
            else ""
        )
        if contact is None:
            message = (
                f"Not acknowledged by {_when(missed)}, and nobody is left to page in the "
                f"escalation table{passed}."
            )
        else:
            from ops.notifications import events  # events imports this module

            sent = events.incident_reescalated(incident, contact, missed=missed, now=now)
            sent = [n for n in sent if n.channel.contact_id == contact.pk]  # not watchers
            held = [n.next_attempt_at for n in sent if n.status == DeliveryStatus.HELD]
            message = (
                f"Not acknowledged by {_when(missed)}: re-escalated to {contact.team} "
                f"({contact.issue_type}), who respond by {_when(due)}{passed}. Paged on "
                f"{len(sent)} channel{'s' if len(sent) != 1 else ''}"
                + (f"; held until {_when(min(held))} (their hours)" if held else "")
                + "."
            )
        incidents.log_action(incident, IncidentEventKind.PAGED, message, actor=ACTOR)
    return True


def due_incidents(now: datetime) -> list[int]:
    return list(
        Incident.objects.filter(status=IncidentStatus.OPEN, next_page_at__lte=now)
        .order_by("next_page_at", "pk")
        .values_list("pk", flat=True)[:REESCALATION_BATCH]
    )


def reescalate_due(now: datetime | None = None) -> int:
    """The 1-minute schedule: re-escalate every open, unacknowledged incident whose next page
    is due; returns how many were re-escalated."""
    now = now or timezone.now()
    return sum(page_next(incident_id, now) for incident_id in due_incidents(now))


def reescalate_due_task() -> dict[str, int]:
    """The schedule's entry point (cfadmin.incident_reescalation)."""
    return {"reescalated": reescalate_due()}
