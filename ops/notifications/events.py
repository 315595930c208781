"""The events cfadmin tells people about. Each finds its enabled rules, resolves them to
channels (ops.notifications.rules), builds the message (ops.notifications.messages) and records
one Notification per channel (ops.notifications.delivery.queue) in the caller's transaction:
the worker sends them after commit, never in the request that raised the event.

A dedupe key per event and subject lets delivery suppress the same message to the same channel
within NOTIFY_DEDUPE_MINUTES (a flapping check's outages share theirs, by check name)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from ops.models import (
    ChecklistRun,
    EscalationContact,
    Incident,
    ItemState,
    Notification,
    NotifyEvent,
    Outage,
    ProcedureCategory,
)
from ops.notifications import delivery, messages, paging, rules

if TYPE_CHECKING:
    from stacks.models import Operation


def dedupe_key(event: str, kind: str, ref: object) -> str:
    return f"{event}:{kind}:{ref}"[:200]


def notify(
    event: str,
    subject: rules.Subject,
    message: messages.Message,
    *,
    key: str,
    now: datetime | None = None,
) -> list[Notification]:
    """One notification per channel the event's rules reach; a business-hours contact's are
    held until its next opening."""
    now = now or timezone.now()
    queued = []
    with transaction.atomic():
        for target in rules.targets(event, subject):
            queued.append(
                delivery.queue(
                    event=event,
                    title=message.title,
                    body=message.body,
                    link=message.link,
                    recipient_repr=target.recipient_repr,
                    channel=target.channel,
                    incident=subject.incident,
                    rule=target.rule,
                    dedupe_key=key,
                    not_before=paging.not_before_for(target.contact, now),
                )
            )
    return queued


def _incident_subject(incident: Incident, contact: EscalationContact | None) -> rules.Subject:
    stacks = tuple(incident.stacks.select_related("tenant")[: rules.MAX_DEPLOYER_STACKS])
    return rules.Subject(incident=incident, contact=contact, stacks=stacks)


def incident_opened(incident: Incident) -> list[Notification]:
    """A new incident: its issue type's contact (by default) is paged."""
    event = NotifyEvent.INCIDENT_OPENED
    contact = incident.escalation if incident.escalation_id else None
    return notify(
        event,
        _incident_subject(incident, contact),
        messages.incident_opened(incident),
        key=dedupe_key(event, "incident", incident.pk),
    )


def incident_escalated(incident: Incident, contact: EscalationContact) -> list[Notification]:
    """Someone escalated the incident: the contact escalated to (by default) is paged."""
    event = NotifyEvent.INCIDENT_ESCALATED
    return notify(
        event,
        _incident_subject(incident, contact),
        messages.incident_escalated(incident, contact),
        key=dedupe_key(event, "incident", f"{incident.pk}:contact:{contact.pk}"),
    )


def incident_reescalated(
    incident: Incident,
    contact: EscalationContact,
    *,
    missed: datetime | None,
    now: datetime | None = None,
) -> list[Notification]:
    """Nobody acknowledged by the target: the next contact in priority order is paged
    (ops.notifications.paging decides who)."""
    event = NotifyEvent.INCIDENT_REESCALATED
    return notify(
        event,
        _incident_subject(incident, contact),
        messages.incident_reescalated(incident, contact, missed),
        key=dedupe_key(event, "incident", f"{incident.pk}:contact:{contact.pk}"),
        now=now,
    )


def outage_started(outage: Outage) -> list[Notification]:
    """A health check went down (the Platform contact, by default)."""
    event = NotifyEvent.OUTAGE_STARTED
    return notify(
        event,
        rules.Subject(),
        messages.outage_started(outage),
        key=dedupe_key(event, "outage", outage.check_name),
    )


def outage_ended(outage: Outage) -> list[Notification]:
    """A down check is healthy again (the Platform contact, by default)."""
    event = NotifyEvent.OUTAGE_ENDED
    return notify(
        event,
        rules.Subject(),
        messages.outage_ended(outage),
        key=dedupe_key(event, "outage", outage.check_name),
    )


def operation_failed(operation: Operation) -> list[Notification]:
    """OPERATION_FAILURE_HOOKS: tell the operator who requested a failed operation."""
    event = NotifyEvent.OPERATION_FAILED
    return notify(
        event,
        rules.Subject(operation=operation, stacks=(operation.stack,)),
        messages.operation_failed(operation),
        key=dedupe_key(event, "operation", operation.pk),
    )


def checklist_failed(run: ChecklistRun) -> list[Notification]:
    """A validation checklist run with a failed automatic item: tell whoever deployed the
    stack. Once per run: probes run again (a person asks) notify nobody anew."""
    event = NotifyEvent.CHECKLIST_FAILED
    key = dedupe_key(event, "run", run.pk)
    run = ChecklistRun.objects.select_related(
        "procedure", "stack__tenant", "tenant", "operation__requested_by"
    ).get(pk=run.pk)
    if run.procedure.category != ProcedureCategory.VALIDATION:
        return []
    failed = run.items.filter(state=ItemState.FAILED).exclude(step__probe="")
    if not failed.exists() or Notification.objects.filter(dedupe_key=key).exists():
        return []
    subject = rules.Subject(operation=run.operation, stacks=(run.stack,) if run.stack_id else ())
    return notify(event, subject, messages.checklist_failed(run), key=key)
