"""Notification rules are data an admin edits: a rule names what it needs (and the errors say
which field and why), edits are audited, support reads them but cannot change them, and a rule
added here changes who is notified."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from cfadmin.models import AuditAction, AuditEvent
from ops.models import EscalationContact, Severity
from ops.models.notifications import NotificationRule, NotifyEvent, RuleRecipient
from ops.notifications import rules

pytestmark = pytest.mark.django_db
ADD = reverse("admin:ops_notificationrule_add")
LIST = reverse("admin:ops_notificationrule_changelist")


def platform() -> EscalationContact:
    return EscalationContact.objects.get(issue_type="Platform Down")


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        (
            {"event": NotifyEvent.OUTAGE_STARTED, "recipient": RuleRecipient.CONTACT},
            "contact",
            "Choose",
        ),
        ({"event": NotifyEvent.OUTAGE_STARTED, "recipient": RuleRecipient.USER}, "user", "Choose"),
        (
            {
                "event": NotifyEvent.OUTAGE_ENDED,
                "recipient": RuleRecipient.ISSUE_TYPE_CONTACT,
            },
            "recipient",
            "issue-type contact",
        ),
        (
            {"event": NotifyEvent.INCIDENT_OPENED, "recipient": RuleRecipient.REQUESTER},
            "recipient",
            "requester",
        ),
        (
            {
                "event": NotifyEvent.OPERATION_FAILED,
                "recipient": RuleRecipient.REQUESTER,
                "min_severity": Severity.SEV1,
            },
            "min_severity",
            "incident events only",
        ),
        (
            {"event": NotifyEvent.CHANNEL_TEST, "recipient": RuleRecipient.REQUESTER},
            "event",
            "sent directly",
        ),
    ],
)
def test_a_rule_names_what_it_needs_and_the_error_says_which_field(fields, field, words):
    with pytest.raises(ValidationError) as raised:
        NotificationRule(**fields).full_clean()
    assert words in " ".join(raised.value.message_dict[field])


def test_the_seeded_rules_are_valid():
    seeded = list(NotificationRule.objects.all())
    assert {rule.event for rule in seeded} >= {
        NotifyEvent.INCIDENT_OPENED,
        NotifyEvent.OUTAGE_STARTED,
        NotifyEvent.OPERATION_FAILED,
        NotifyEvent.CHECKLIST_FAILED,
    }
    for rule in seeded:
        rule.full_clean()


def test_an_admin_adds_a_rule_and_it_is_audited_and_applied(client, admin_role, operator):
    client.force_login(admin_role)
    bad = client.post(ADD, {"event": NotifyEvent.OUTAGE_STARTED, "recipient": "user"})
    assert bad.status_code == 200
    assert "Choose the staff user this rule notifies." in bad.content.decode()
    assert not NotificationRule.objects.filter(user=operator).exists()

    response = client.post(
        ADD,
        {
            "event": NotifyEvent.OUTAGE_STARTED,
            "recipient": "user",
            "user": operator.pk,
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    rule = NotificationRule.objects.get(user=operator)
    assert AuditEvent.objects.filter(action=AuditAction.CREATE, target_id=str(rule.pk)).exists()
    assert rule in rules.rules_for(NotifyEvent.OUTAGE_STARTED)

    NotificationRule.objects.filter(pk=rule.pk).update(enabled=False)
    assert rule not in rules.rules_for(NotifyEvent.OUTAGE_STARTED)


def test_support_reads_the_rules_but_cannot_change_them(client, support):
    client.force_login(support)
    listing = client.get(LIST)
    assert listing.status_code == 200
    assert "Outage started" in listing.content.decode()
    assert client.get(ADD).status_code == 403
    rule = NotificationRule.objects.filter(contact=platform()).first()
    assert rule is not None
    response = client.post(
        reverse("admin:ops_notificationrule_change", args=[rule.pk]),
        {"event": rule.event, "recipient": rule.recipient, "contact": rule.contact_id},
    )
    assert response.status_code == 403
