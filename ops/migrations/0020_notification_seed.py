"""The default notification rules (issue 16) and the customer message template, as data an
admin edits afterwards. Frozen here: no app code is imported.

- incident opened / escalated → the incident's issue-type contact (escalated: the contact
  escalated to); not acknowledged in time → the next contact in priority order;
- outage started / ended → the "Platform Down" contact (when the escalation table has one);
- operation failed → the operator who requested it; validation checklist failed → whoever
  deployed the stack."""

from django.db import migrations

PLATFORM_DOWN = "Platform Down"

# (event, recipient, contact issue type or "")
RULES = [
    ("incident_opened", "issue_type_contact", ""),
    ("incident_escalated", "issue_type_contact", ""),
    ("incident_reescalated", "issue_type_contact", ""),
    ("outage_started", "contact", PLATFORM_DOWN),
    ("outage_ended", "contact", PLATFORM_DOWN),
    ("operation_failed", "requester", ""),
    ("checklist_failed", "deployer", ""),
]

TEMPLATE_NAME = "Service disruption"
TEMPLATE_SUBJECT = "[$status] $incident"
TEMPLATE_BODY = """Hello $tenant,

We are working on a service disruption that affects you: $incident.
Current status: $status.

$update

Follow our progress on the status page: $status_page

We will write again when it is resolved. We are sorry for the trouble.

The CloudFreedom team
"""


def _rules(apps):
    contacts = apps.get_model("ops", "EscalationContact").objects
    for event, recipient, issue_type in RULES:
        contact = None
        if issue_type:
            contact = contacts.filter(issue_type__iexact=issue_type).first()
            if contact is None:
                continue  # no such contact in this escalation table: no rule to make
        yield event, recipient, contact


def seed(apps, schema_editor):
    rules = apps.get_model("ops", "NotificationRule").objects
    for event, recipient, contact in _rules(apps):
        rules.get_or_create(event=event, recipient=recipient, contact=contact, user=None)
    apps.get_model("ops", "CustomerMessageTemplate").objects.get_or_create(
        name=TEMPLATE_NAME, defaults={"subject": TEMPLATE_SUBJECT, "body": TEMPLATE_BODY}
    )


def unseed(apps, schema_editor):
    rules = apps.get_model("ops", "NotificationRule").objects
    for event, recipient, contact in _rules(apps):
        rules.filter(
            event=event, recipient=recipient, contact=contact, user=None, min_severity=""
        ).delete()
    apps.get_model("ops", "CustomerMessageTemplate").objects.filter(
        name=TEMPLATE_NAME, subject=TEMPLATE_SUBJECT, body=TEMPLATE_BODY
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("ops", "0019_notifications_status_page")]
    operations = [migrations.RunPython(seed, unseed)]
