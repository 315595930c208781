"""Who an event notifies: the enabled NotificationRule rows of the event (data an admin edits),
each naming a recipient, resolved to the recipient's enabled channels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef

from ops.models import (
    EscalationContact,
    Incident,
    NotificationChannel,
    NotificationRule,
    NotifyEvent,
    RuleRecipient,
    Severity,
)
from stacks.choices import OperationKind, OperationStatus
from stacks.models import Operation, Stack

# Deployers looked up for an event about several stacks (an incident's): one query each.
MAX_DEPLOYER_STACKS = 10


@dataclass(frozen=True)
class Subject:
    """What an event is about, as far as rules need it to find people.
    `contact` is who ISSUE_TYPE_CONTACT means: the incident's issue-type contact, or for an
    escalation the contact escalated to, or for a re-escalation the next contact paged."""

    incident: Incident | None = None
    contact: EscalationContact | None = None
    operation: Operation | None = None
    stacks: tuple[Stack, ...] = ()


@dataclass(frozen=True)
class Target:
    """One channel to send to, the rule that chose it, and the contact whose hours apply."""

    channel: NotificationChannel
    rule: NotificationRule
    contact: EscalationContact | None = None
    recipient_repr: str = field(default="")


def severity_applies(rule: NotificationRule, severity: str) -> bool:
    """A rule with a minimum severity matches incidents at it or worse (SEV1 is the worst)."""
    if not rule.min_severity or not severity:
        return True
    order = Severity.values
    return order.index(severity) <= order.index(rule.min_severity)


def rules_for(event: str, *, severity: str = "") -> list[NotificationRule]:
    """The enabled rules of `event`; for incident events, those whose severity matches."""
    found = NotificationRule.objects.filter(event=event, enabled=True).select_related(
        "contact", "user"
    )
    return [rule for rule in found.order_by("pk") if severity_applies(rule, severity)]


def deployer(stack: Stack) -> Any:
    """The user who requested the stack's latest succeeded deploy (None if nobody did, or the
    deploy was requested by cfadmin itself)."""
    latest = (
        Operation.objects.filter(
            stack=stack, kind=OperationKind.DEPLOY, status=OperationStatus.SUCCEEDED
        )
        .select_related("requested_by")
        .order_by("-finished_at", "-pk")
        .first()
    )
    return latest.requested_by if latest is not None else None


def _people(rule: NotificationRule, subject: Subject) -> tuple[list[EscalationContact], list[Any]]:
    """The contacts and users a rule names for this subject."""
    recipient = rule.recipient
    if recipient == RuleRecipient.ISSUE_TYPE_CONTACT:
        return ([subject.contact] if subject.contact is not None else []), []
    if recipient == RuleRecipient.CONTACT:
        return ([rule.contact] if rule.contact_id else []), []
    if recipient == RuleRecipient.USER:
        return [], ([rule.user] if rule.user_id else [])
    if recipient == RuleRecipient.REQUESTER:
        operation = subject.operation
        return [], ([operation.requested_by] if operation and operation.requested_by_id else [])
    if recipient == RuleRecipient.DEPLOYER:
        users = [deployer(stack) for stack in subject.stacks[:MAX_DEPLOYER_STACKS]]
        return [], [user for user in users if user is not None]
    return [], []


def _contact_channels(contacts: Iterable[EscalationContact]) -> list[NotificationChannel]:
    ids = [contact.pk for contact in contacts]
    if not ids:
        return []
    found = NotificationChannel.objects.filter(contact_id__in=ids, enabled=True)
    return list(found.select_related("contact").order_by("contact_id", "position", "pk"))


def _user_channels(users: Iterable[Any]) -> list[NotificationChannel]:
    ids = [user.pk for user in users if user.is_active]  # a disabled account is told nothing
    if not ids:
        return []
    found = NotificationChannel.objects.filter(user_id__in=ids, enabled=True)
    return list(found.select_related("user").order_by("user_id", "position", "pk"))


def targets(event: str, subject: Subject) -> list[Target]:
    """Every channel the event's enabled rules reach for this subject, each once (the first
    rule reaching it is the one recorded)."""
    severity = subject.incident.severity if subject.incident is not None else ""
    chosen: dict[int, Target] = {}
    for rule in rules_for(event, severity=severity):
        contacts, users = _people(rule, subject)
        for channel in _contact_channels(contacts) + _user_channels(users):
            if channel.pk in chosen:
                continue
            chosen[channel.pk] = Target(
                channel=channel,
                rule=rule,
                contact=channel.contact if channel.contact_id else None,
                recipient_repr=f"{channel.owner_repr} — {channel}"[:200],
            )
    return list(chosen.values())


def has_enabled_channel() -> Exists:
    """Whether the contact (OuterRef "pk") has a channel to be paged on, for an annotation."""
    return Exists(NotificationChannel.objects.filter(contact=OuterRef("pk"), enabled=True))


def pages_next_contact(severity: str) -> bool:
    """Whether re-escalation is on for an incident of this severity: an enabled
    incident_reescalated rule whose recipient is the issue-type contact (there: the next
    contact in priority order)."""
    return any(
        rule.recipient == RuleRecipient.ISSUE_TYPE_CONTACT
        for rule in rules_for(NotifyEvent.INCIDENT_REESCALATED, severity=severity)
    )
