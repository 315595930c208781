"""Incidents: open one, work it (status, notes, escalation, checklist runs), resolve it.

Every change appends a line to the incident's timeline; changes made here are audited here
(the admin audits its own form edits). Status moves are conditional updates, so two people
acknowledging at once give one acknowledgement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cfadmin import audit
from cfadmin.models import AuditAction
from ops import response
from ops.models import (
    EscalationContact,
    Incident,
    IncidentEvent,
    IncidentEventKind,
    IncidentStatus,
    Outage,
    Severity,
)
from ops.notifications import events as notify
from ops.notifications import paging

NOTE_MAX_LENGTH = 10_000


def add_event(incident: Incident, kind: str, message: str, *, actor: Any) -> IncidentEvent:
    return IncidentEvent.objects.create(
        incident=incident,
        kind=kind,
        message=message,
        actor=actor if hasattr(actor, "pk") else None,
        actor_repr=audit.actor_label(actor)[:150],
    )


def log_action(
    incident: Incident,
    kind: str,
    message: str,
    *,
    actor: Any,
    action: str = AuditAction.UPDATE,
    changes: dict[str, Any] | None = None,
    audit_message: str = "",
) -> IncidentEvent:
    """What someone (or cfadmin) did about the incident: a timeline line and its audit event
    (scoped to the incident's tenant and stack)."""
    event = add_event(incident, kind, message, actor=actor)
    audit.record(
        actor=actor,
        action=action,
        target=incident,
        message=(audit_message or message)[:1000],
        changes=changes or {},
    )
    return event


def prepare_new(incident: Incident, *, actor: Any) -> None:
    """Before a new incident's first save: who opened it, when, and its response target."""
    incident.status = IncidentStatus.OPEN
    incident.opened_by = actor if hasattr(actor, "pk") else None
    incident.opened_by_repr = audit.actor_label(actor)[:150]
    incident.opened_at = timezone.now()
    incident.set_response_target()


def record_opened(incident: Incident, *, actor: Any) -> IncidentEvent:
    """The timeline's first line, once the incident and its links are saved. The caller audits
    the creation (the admin does, with the form's values)."""
    message = f"Opened: {incident.title} ({incident.get_severity_display()})"
    if incident.escalation_id:
        contact = incident.escalation
        due = timezone.localtime(incident.response_due_at)
        message += (
            f". {contact.issue_type}: {contact.team} responds within "
            f"{contact.response_target}, by {due:%Y-%m-%d %H:%M}"
        )
    affected = [
        f"{key} {', '.join(sorted(names))}"
        for key, names in details(incident).items()
        if isinstance(names, set) and names
    ]
    if affected:
        message += ". Affects " + "; ".join(affected)
    event = add_event(incident, IncidentEventKind.OPENED, message, actor=actor)
    paging.schedule_first_page(incident)
    notify.incident_opened(incident)
    return event


def _clean_text(text: str, field: str, rule: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({field: rule})
    if len(text) > NOTE_MAX_LENGTH:
        raise ValidationError({field: f"Keep it under {NOTE_MAX_LENGTH} characters."})
    return text


def add_note(incident: Incident, note: str, *, actor: Any) -> IncidentEvent:
    note = _clean_text(note, "note", "Write the note first.")
    with transaction.atomic():
        event = add_event(incident, IncidentEventKind.NOTE, note, actor=actor)
        tenant_slug, stack_name = incident.audit_scope()
        audit.record(
            actor=actor,
            action=AuditAction.UPDATE,
            target=incident,
            message=f"Note: {note}",
            tenant_slug=tenant_slug,
            stack_name=stack_name,
        )
    return event


def change_status(
    incident: Incident, status: str, *, actor: Any, note: str = "", resolution: str = ""
) -> Incident:
    """Move the incident on. Resolving needs what fixed it; reopening needs why."""
    if status not in IncidentStatus.values:
        raise ValidationError({"status": f"Unknown status {status!r}."})
    if not incident.can_become(status):
        raise ValidationError(
            {
                "status": f"An incident that is {incident.get_status_display().lower()} cannot "
                f"become {IncidentStatus(status).label.lower()}."
            }
        )
    note = (note or "").strip()
    now = timezone.now()
    updates: dict[str, Any] = {"status": status}
    if status == IncidentStatus.RESOLVED:
        resolution = _clean_text(
            resolution or incident.resolution,
            "resolution",
            "Say what fixed it before resolving the incident.",
        )
        blockers = response.resolve_blockers(incident, resolution)
        if blockers:
            raise ValidationError({"resolution": blockers})
        updates.update(resolved_at=now, resolution=resolution)
    elif status == IncidentStatus.OPEN:
        note = _clean_text(note, "note", "Say why the incident is reopened.")
        updates.update(resolved_at=None)
    if status == IncidentStatus.MITIGATED:
        updates["mitigated_at"] = now
    if incident.acknowledged_at is None and status != IncidentStatus.OPEN:
        updates["acknowledged_at"] = now  # the first response, whatever it is
    updates["next_page_at"] = paging.page_at_after_move(incident, status, now)
    with transaction.atomic():
        changed = Incident.objects.filter(pk=incident.pk, status=incident.status).update(**updates)
        if not changed:
            raise ValidationError(
                "Someone changed this incident's status meanwhile; reload the page and look again."
            )
        previous = incident.get_status_display()
        for field, value in updates.items():
            setattr(incident, field, value)
        message = f"{previous} → {incident.get_status_display()}"
        if status == IncidentStatus.RESOLVED:
            message += f". Resolution: {incident.resolution}"
        if note:
            message += f" — {note}"
        add_event(incident, IncidentEventKind.STATUS, message, actor=actor)
        if status != IncidentStatus.OPEN:
            paging.stop_paging(incident)
        tenant_slug, stack_name = incident.audit_scope()
        audit.record(
            actor=actor,
            action=AuditAction.UPDATE,
            target=incident,
            message=f"Status: {message}",
            changes={"fields": {"status": [previous, incident.get_status_display()]}},
            tenant_slug=tenant_slug,
            stack_name=stack_name,
        )
    return incident


def escalate(
    incident: Incident, contact: EscalationContact, *, actor: Any, how: str = ""
) -> IncidentEvent:
    """Record that the contact's team was called in. An incident without an issue type takes
    this one, with its response target counted from now."""
    how = (how or "").strip()
    with transaction.atomic():
        due = contact.response_due(timezone.now())
        first_page = due if incident.status == IncidentStatus.OPEN else None
        adopted = Incident.objects.filter(pk=incident.pk, escalation__isnull=True).update(
            escalation=contact, response_due_at=due, next_page_at=first_page
        )
        if adopted:
            incident.escalation, incident.response_due_at = contact, due
            incident.next_page_at = first_page
        reach = ", ".join(part for part in (contact.phone, contact.email, contact.chat) if part)
        message = (
            f"Escalated to {contact.team} ({contact.issue_type}, respond within "
            f"{contact.response_target})"
            + (f" via {reach}" if reach else "")
            + (f" — {how}" if how else "")
        )
        event = add_event(incident, IncidentEventKind.ESCALATED, message, actor=actor)
        tenant_slug, stack_name = incident.audit_scope()
        audit.record(
            actor=actor,
            action=AuditAction.UPDATE,
            target=incident,
            message=message,
            tenant_slug=tenant_slug,
            stack_name=stack_name,
        )
        notify.incident_escalated(incident, contact)
    return event


def details(incident: Incident) -> dict[str, Any]:
    """What a person edits on the incident's form, as text, for the timeline's change line."""
    return {
        "title": incident.title,
        "severity": incident.get_severity_display().split(" —")[0],
        "issue type": incident.escalation.issue_type if incident.escalation_id else "none",
        "owner": incident.owner.get_username() if incident.owner_id else "nobody",
        "summary": incident.summary,
        "tenants": {tenant.slug for tenant in incident.tenants.all()},
        "stacks": {str(stack) for stack in incident.stacks.all()},
        "outages": {str(outage) for outage in incident.outages.all()},
    }


def record_edit(
    incident: Incident, before: dict[str, Any], *, actor: Any, escalation_changed: bool
) -> IncidentEvent | None:
    """After a form edit: a timeline line saying what changed. A new issue type routes the
    incident to another team, so its response target counts from now (as an escalation's)."""
    if escalation_changed:
        incident.set_response_target(since=timezone.now())
        # The new team is paged, and re-escalation counts from its target.
        incident.next_page_at = (
            incident.response_due_at if incident.status == IncidentStatus.OPEN else None
        )
        Incident.objects.filter(pk=incident.pk).update(
            response_due_at=incident.response_due_at, next_page_at=incident.next_page_at
        )
        if incident.escalation_id:
            notify.incident_escalated(incident, incident.escalation)
    after = details(incident)
    parts = []
    for key, old in before.items():
        new = after[key]
        if old == new:
            continue
        if isinstance(old, set):
            parts += [f"linked {key[:-1]} {name}" for name in sorted(new - old)]
            parts += [f"unlinked {key[:-1]} {name}" for name in sorted(old - new)]
        elif key == "summary":
            parts.append("summary edited")
        else:
            parts.append(f"{key}: {old} → {new}")
    if not parts:
        return None
    message = "; ".join(parts)
    return add_event(
        incident, IncidentEventKind.CHANGED, message[0].upper() + message[1:], actor=actor
    )


def open_incident(incident: Incident, *, actor: Any, save_links: Callable[[], None]) -> Incident:
    """A new incident from the form: who opened it and its response target, saved with its
    links (`save_links` saves the form's tenants, stacks and outages), then its first line.
    The caller audits the creation (the admin does, with the form's values)."""
    with transaction.atomic():
        prepare_new(incident, actor=actor)
        incident.save()
        save_links()
        record_opened(incident, actor=actor)
    return incident


def edit_incident(
    incident: Incident,
    *,
    actor: Any,
    fields: Iterable[str],
    save_links: Callable[[], None],
    escalation_changed: bool,
) -> Incident:
    """A form edit of an incident: saves only the `fields` the form edits (a status change made
    meanwhile, in another tab, is kept), then its links, then a timeline line saying what
    changed. Returns the incident as it was before, for the caller's audit of the edit."""
    with transaction.atomic():
        previous = Incident.objects.select_related("escalation", "owner").get(pk=incident.pk)
        before = details(previous)
        incident.save(update_fields=list(fields))
        save_links()
        record_edit(incident, before, actor=actor, escalation_changed=escalation_changed)
    return previous


def initial_from_outage(outage: Outage) -> dict[str, str]:
    """The add form's values for an incident about an outage: the check, when, what it said."""
    from ops.health import CHECKS

    critical = any(check.critical for check in CHECKS if check.name == outage.check_name)
    started = timezone.localtime(outage.started_at)
    initial = {
        "title": f"{outage.check_name} down since {started:%Y-%m-%d %H:%M}",
        "summary": outage.last_message or outage.first_message,
        "outages": str(outage.pk),
        "severity": Severity.SEV1 if critical else Severity.SEV2,
    }
    platform = EscalationContact.objects.filter(issue_type__iexact="Platform Down").first()
    if platform is not None and critical:
        initial["escalation"] = str(platform.pk)
    return initial


def record_outage_ended(outage: Outage) -> None:
    """The check recovered: a line on each unresolved incident the outage is linked to, so the
    person working it sees it without watching the dashboard."""
    for incident in outage.incidents.unresolved():
        add_event(
            incident,
            IncidentEventKind.OUTAGE,
            f"{outage.check_name} is healthy again: its outage ended after "
            f"{outage.duration_text} ({outage.failures} failed checks).",
            actor=None,
        )
