"""The events cfadmin tells people about. Each finds its enabled rules, resolves them to
channels (ops.notifications.rules), builds the message (ops.notifications.messages) and records
one Notification per channel (ops.notifications.delivery.queue) in the caller's transaction:
the worker sends them after commit, never in the request that raised the event.

A dedupe key per event and subject lets delivery suppress the same message to the same channel
within NOTIFY_DEDUPE_MINUTES (a flapping check's outages share theirs, by check name)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ops.maintenance.expected import expected_label, expected_window
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


logger = logging.getLogger(__name__)
Event = TypeVar("Event", bound=Callable[..., list[Notification]])


def never_breaks_the_caller(event: Event) -> Event:
    """An event is told about from inside the action that raised it (a health run's
    transaction, opening an incident): telling people must never undo or fail that action. So
    the event runs in a savepoint, and a failure is logged and leaves nothing behind."""

    @functools.wraps(event)
    def guarded(*args: Any, **kwargs: Any) -> list[Notification]:
        try:
            with transaction.atomic():
                return event(*args, **kwargs)
        except Exception:
            logger.exception("Notifications for %s failed; the action stands", event.__name__)
            return []

    return guarded  # type: ignore[return-value]


def dedupe_key(event: str, kind: str, ref: object) -> str:
    return f"{event}:{kind}:{ref}"[:200]


def notify(
    event: str,
    subject: rules.Subject,
    message: messages.Message,
    *,
    key: str,
    now: datetime | None = None,
    not_before: datetime | None = None,
) -> list[Notification]:
    """One notification per channel the event's rules reach, not before `not_before`; a
    business-hours contact's are held until its next opening."""
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
                    not_before=max(
                        (t for t in (not_before, paging.not_before_for(target.contact, now)) if t),
                        default=None,
                    ),
                )
            )
    return queued


def _incident_subject(incident: Incident, contact: EscalationContact | None) -> rules.Subject:
    stacks = tuple(incident.stacks.select_related("tenant")[: rules.MAX_DEPLOYER_STACKS])
    return rules.Subject(incident=incident, contact=contact, stacks=stacks)


@never_breaks_the_caller
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


@never_breaks_the_caller
def incident_escalated(incident: Incident, contact: EscalationContact) -> list[Notification]:
    """Someone escalated the incident: the contact escalated to (by default) is paged."""
    event = NotifyEvent.INCIDENT_ESCALATED
    return notify(
        event,
        _incident_subject(incident, contact),
        messages.incident_escalated(incident, contact),
        key=dedupe_key(event, "incident", f"{incident.pk}:contact:{contact.pk}"),
    )


@never_breaks_the_caller
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


@never_breaks_the_caller
def outage_started(outage: Outage) -> list[Notification]:
    """A health check went down (the Platform contact, by default). Inside an announced
    maintenance window the outage is marked expected and the title says so; it is still sent
    (the maintenance may have broken what it should not have).

    A flapping check: its "ended" waits NOTIFY_RECOVERY_QUIET_MINUTES (outage_ended); failing
    again before then cancels it, and this "started" continues the one people got (suppressed
    as its duplicate within NOTIFY_DEDUPE_MINUTES). After a recovery people were told of, a
    new failure is always sent: the last word they have must be the check's state."""
    event = NotifyEvent.OUTAGE_STARTED
    message = messages.outage_started(outage)
    window = expected_window(outage)
    if window is not None:
        message = replace(message, title=f"{message.title} — {expected_label(window)}")
    untold_recovery = delivery.cancel_waiting(
        Notification.objects.filter(
            event=NotifyEvent.OUTAGE_ENDED, dedupe_key__startswith=_outage_key_prefix(outage)
        ),
        "not sent: the check failed again before its recovery lasted",
    )
    key = dedupe_key(event, "outage", outage.check_name)
    if not untold_recovery and _recovery_was_told(outage):
        key = dedupe_key(event, "outage", f"{outage.check_name}:{outage.pk}")
    return notify(event, rules.Subject(), message, key=key)


def _outage_key_prefix(outage: Outage) -> str:
    return dedupe_key(NotifyEvent.OUTAGE_ENDED, "outage", f"{outage.check_name}:")


def _recovery_was_told(outage: Outage) -> bool:
    """Whether an "ended" of this check went out (or waits) within the duplicate window."""
    since = timezone.now() - timedelta(minutes=settings.NOTIFY_DEDUPE_MINUTES)
    return Notification.objects.filter(
        event=NotifyEvent.OUTAGE_ENDED,
        dedupe_key__startswith=_outage_key_prefix(outage),
        created_at__gte=since,
        status__in=delivery.DEDUPE_AGAINST,
    ).exists()


@never_breaks_the_caller
def outage_ended(outage: Outage) -> list[Notification]:
    """A down check is healthy again (the Platform contact, by default); an expected one's
    title says so. Held NOTIFY_RECOVERY_QUIET_MINUTES: a check failing again meanwhile cancels
    it (outage_started), so a flapping check does not page "healthy" while it is down."""
    event = NotifyEvent.OUTAGE_ENDED
    message = messages.outage_ended(outage)
    if outage.expected_maintenance_id is not None:
        label = expected_label(outage.expected_maintenance)
        message = replace(message, title=f"{message.title} — {label}")
    quiet = timezone.now() + timedelta(minutes=settings.NOTIFY_RECOVERY_QUIET_MINUTES)
    return notify(
        event,
        rules.Subject(),
        message,
        key=dedupe_key(event, "outage", f"{outage.check_name}:{outage.pk}"),
        not_before=quiet,
    )


@never_breaks_the_caller
def operation_failed(operation: Operation) -> list[Notification]:
    """OPERATION_FAILURE_HOOKS: tell the operator who requested a failed operation."""
    event = NotifyEvent.OPERATION_FAILED
    return notify(
        event,
        rules.Subject(operation=operation, stacks=(operation.stack,)),
        messages.operation_failed(operation),
        key=dedupe_key(event, "operation", operation.pk),
    )


@never_breaks_the_caller
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
