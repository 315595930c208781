"""Telling people (issue 16): channels a contact or a user is reached on, rules saying which
event notifies whom, and one row per message sent (its outcome, attempts and retries).

A channel's URL holds its token (webhook path, bot token, password): it is stored encrypted
(cfadmin.encryption) and shown only as its masked hint; ops.notifications.channels reads it."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ops.models.contacts import EscalationContact
from ops.models.incidents import Incident, Severity


class ChannelKind(models.TextChoices):
    """What a channel URL reaches (apprise's URL syntax; a bare address is e-mail)."""

    EMAIL = "email", "E-mail"
    SLACK = "slack", "Slack"
    MATTERMOST = "mattermost", "Mattermost"
    TEAMS = "msteams", "Microsoft Teams"
    DISCORD = "discord", "Discord"
    TELEGRAM = "telegram", "Telegram"
    WEBHOOK = "webhook", "JSON webhook"
    NTFY = "ntfy", "ntfy"
    OTHER = "other", "Other (apprise)"


class NotificationChannel(models.Model):
    """Where one escalation contact (a team) or one staff user (personal alerts) is reached."""

    contact = models.ForeignKey(
        EscalationContact,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="channels",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_channels",
    )
    label = models.CharField(max_length=100, blank=True, help_text="e.g. 'on-call pager'.")
    kind = models.CharField(max_length=16, choices=ChannelKind.choices, editable=False)
    url_encrypted = models.TextField(editable=False)
    url_hint = models.CharField("address", max_length=200, editable=False)
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="Lower is tried first.")
    last_test_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_test_ok = models.BooleanField(null=True, editable=False)
    last_test_message = models.CharField(max_length=300, blank=True, editable=False)
    # Deliveries that failed in a row (reset by a success): the dashboard warns past a limit.
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    last_failure_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(contact__isnull=False, user__isnull=True)
                | Q(contact__isnull=True, user__isnull=False),
                name="channel_has_one_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.url_hint}"

    @property
    def owner_repr(self) -> str:
        if self.contact_id:
            return self.contact.team
        return self.user.get_username()


class NotifyEvent(models.TextChoices):
    INCIDENT_OPENED = "incident_opened", "Incident opened"
    INCIDENT_ESCALATED = "incident_escalated", "Incident escalated"
    INCIDENT_REESCALATED = "incident_reescalated", "Incident not acknowledged in time"
    OUTAGE_STARTED = "outage_started", "Outage started"
    OUTAGE_ENDED = "outage_ended", "Outage ended"
    OPERATION_FAILED = "operation_failed", "Operation failed"
    CHECKLIST_FAILED = "checklist_failed", "Validation checklist failed"
    CHANNEL_TEST = "channel_test", "Channel test"
    CUSTOMER_UPDATE = "customer_update", "Customer update"


# The events about an incident: a rule's minimum severity applies to these only.
INCIDENT_EVENTS = (
    NotifyEvent.INCIDENT_OPENED,
    NotifyEvent.INCIDENT_ESCALATED,
    NotifyEvent.INCIDENT_REESCALATED,
)
# The events a rule may name (a channel test and a customer update are sent directly).
RULE_EVENTS = tuple(
    event
    for event in NotifyEvent
    if event not in (NotifyEvent.CHANNEL_TEST, NotifyEvent.CUSTOMER_UPDATE)
)


class RuleRecipient(models.TextChoices):
    ISSUE_TYPE_CONTACT = "issue_type_contact", "The incident's issue-type contact"
    CONTACT = "contact", "A chosen escalation contact"
    USER = "user", "A chosen staff user"
    REQUESTER = "requester", "The operator who requested the operation"
    DEPLOYER = "deployer", "Whoever deployed the stack"


class NotificationRule(models.Model):
    """Which event notifies whom: data an admin edits, not code."""

    event = models.CharField(max_length=32, choices=NotifyEvent.choices)
    recipient = models.CharField(max_length=32, choices=RuleRecipient.choices)
    contact = models.ForeignKey(
        EscalationContact,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_rules",
        help_text="For 'a chosen escalation contact'.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_rules",
        help_text="For 'a chosen staff user'.",
    )
    min_severity = models.CharField(
        max_length=8,
        choices=Severity.choices,
        blank=True,
        help_text="Incident events: only at this severity or worse (blank: every severity).",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["event", "pk"]
        indexes = [models.Index(fields=["event", "enabled"], name="ops_rule_event_idx")]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.get_recipient_display()}"

    def clean(self) -> None:
        """A rule names what it needs and nothing else: the contact for 'a chosen contact',
        the user for 'a chosen user', a severity only on incident events; the requester and the
        deployer exist only for operations and checklists."""
        errors = {}
        if self.event not in RULE_EVENTS:
            errors["event"] = "Channel tests and customer updates are sent directly, not by rules."
        if self.recipient == RuleRecipient.CONTACT and self.contact_id is None:
            errors["contact"] = "Choose the escalation contact this rule notifies."
        if self.recipient != RuleRecipient.CONTACT and self.contact_id is not None:
            errors["contact"] = "Only a rule for 'a chosen escalation contact' names a contact."
        if self.recipient == RuleRecipient.USER and self.user_id is None:
            errors["user"] = "Choose the staff user this rule notifies."
        if self.recipient != RuleRecipient.USER and self.user_id is not None:
            errors["user"] = "Only a rule for 'a chosen staff user' names a user."
        if self.min_severity and self.event not in INCIDENT_EVENTS:
            errors["min_severity"] = "A minimum severity applies to incident events only."
        if self.recipient == RuleRecipient.ISSUE_TYPE_CONTACT and self.event not in (
            INCIDENT_EVENTS
        ):
            errors["recipient"] = "Only incidents have an issue-type contact."
        if self.recipient == RuleRecipient.REQUESTER and self.event != NotifyEvent.OPERATION_FAILED:
            errors["recipient"] = "Only a failed operation has a requester."
        if self.recipient == RuleRecipient.DEPLOYER and self.event not in (
            NotifyEvent.OPERATION_FAILED,
            NotifyEvent.CHECKLIST_FAILED,
        ):
            errors["recipient"] = "Only an operation or a validation checklist has a deployer."
        if errors:
            raise ValidationError(errors)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    HELD = "held", "Held for the contact's hours"
    RETRYING = "retrying", "Retrying"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed duplicate"
    CANCELLED = "cancelled", "Cancelled (no longer true)"


# A row in these states still waits for the worker.
WAITING_STATES = (DeliveryStatus.PENDING, DeliveryStatus.HELD, DeliveryStatus.RETRYING)


class Notification(models.Model):
    """One message to one channel (or one e-mail address): what, to whom, when, the outcome.
    The worker sends it after the commit that created it; it never holds a secret."""

    event = models.CharField(max_length=32, choices=NotifyEvent.choices)
    channel = models.ForeignKey(
        NotificationChannel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    to_address = models.EmailField("to address", blank=True)
    recipient_repr = models.CharField("to", max_length=200)
    title = models.CharField(max_length=300)
    body = models.TextField()
    link = models.CharField(max_length=500, blank=True)
    incident = models.ForeignKey(
        Incident,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )
    rule = models.ForeignKey(
        NotificationRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dedupe_key = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # Held (the contact's hours) or retrying (back-off): not sent before this moment.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="ops_notif_due_idx"),
            models.Index(fields=["dedupe_key", "created_at"], name="ops_notif_dedupe_idx"),
            models.Index(fields=["incident", "created_at"], name="ops_notif_incident_idx"),
            models.Index(fields=["channel", "created_at"], name="ops_notif_channel_idx"),
            models.Index(fields=["created_at"], name="ops_notif_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.recipient_repr}: {self.get_status_display()}"


class CustomerMessageTemplate(models.Model):
    """An editable message to affected tenants' contacts. `$incident`, `$status`, `$tenant`,
    `$update` and `$status_page` are replaced (string.Template: nothing else is evaluated)."""

    name = models.CharField(max_length=100, unique=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
