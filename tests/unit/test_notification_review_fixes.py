"""What a review of issue 16 found and was fixed: a response cancels the re-escalation pages
held for a contact's hours; a reopened incident is paged again; a new customer update under the
same subject is sent; customers never read the internal title; an incident can be taken off the
status page; the status page's headline never says "all systems operational" while a public
incident is open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse

from cfadmin.business_hours import BusinessHours
from ops import incidents
from ops.models import (
    CustomerMessageTemplate,
    DeliveryStatus,
    Incident,
    IncidentStatus,
    Notification,
    NotifyEvent,
    PublicStatus,
)
from ops.notifications import customer_updates, delivery, paging
from ops.status_page import content
from ops.status_page.updates import post_update, withdraw
from tests.unit.incident_helpers import ALL_DAYS
from tests.unit.notification_helpers import add_channel, contact, default_rules, open_incident

pytestmark = pytest.mark.django_db
NIGHTS_OFF = BusinessHours.parse("09:00-17:00", ALL_DAYS, "UTC")


@pytest.fixture(autouse=True)
def _rules(monkeypatch):
    default_rules()
    monkeypatch.setattr("ops.notifications.delivery.enqueue", lambda *args, **kwargs: None)
    cache.clear()


def reescalations(incident: Incident) -> list[Notification]:
    return list(
        Notification.objects.filter(incident=incident, event=NotifyEvent.INCIDENT_REESCALATED)
    )


def test_acknowledging_cancels_a_page_held_for_the_contacts_hours(support):
    security = contact("Security Incident")
    security.business_hours_only = True
    security.save()
    add_channel(security, "json://127.0.0.1:9/security")
    add_channel(contact("Platform Down"), "json://127.0.0.1:9/platform")
    incident = open_incident(support, escalation=contact("Platform Down"))
    night = datetime(2030, 1, 1, 23, 0, tzinfo=UTC)  # in the future: delivery holds it
    Incident.objects.filter(pk=incident.pk).update(next_page_at=night)

    with override_settings(BUSINESS_HOURS=NIGHTS_OFF):
        assert paging.reescalate_due(now=night) == 1
    [held] = reescalations(incident)
    assert held.status == DeliveryStatus.HELD

    incident.refresh_from_db()
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=support)
    held.refresh_from_db()
    assert held.status == DeliveryStatus.CANCELLED
    delivery.send_due(now=night + timedelta(hours=12))  # the next morning's run
    held.refresh_from_db()
    assert (held.status, held.attempts, held.sent_at) == (DeliveryStatus.CANCELLED, 0, None)


def test_a_reopened_incident_is_paged_again_when_nobody_acknowledges(support):
    add_channel(contact("Security Incident"), "json://127.0.0.1:9/security")
    incident = open_incident(support, escalation=contact("Platform Down"))
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=support)
    incidents.change_status(incident, IncidentStatus.RESOLVED, actor=support, resolution="fixed")
    incidents.change_status(incident, IncidentStatus.OPEN, actor=support, note="it is back")
    incident.refresh_from_db()
    assert incident.acknowledged_at is not None and incident.next_page_at is not None

    assert paging.reescalate_due(now=incident.next_page_at) == 1
    assert [row.channel.contact.team for row in reescalations(incident)] == ["Security Team"]


def test_a_new_customer_update_under_the_same_subject_is_not_taken_for_a_duplicate(
    support, make_tenant
):
    incident = open_incident(support, escalation=contact("Platform Down"))
    incident.tenants.add(make_tenant("acme", name="Acme", contact_email="ops@acme.test"))
    template = CustomerMessageTemplate.objects.get(name="Service disruption")  # seeded
    form = {
        "template": str(template.pk),
        "subject": "[Open] API errors",
        "body": "We are on it.",
        "_send": "1",
    }
    assert customer_updates.send(incident, form, actor=support) == 1
    assert customer_updates.send(incident, form, actor=support) == 0  # the double submit
    later = {**form, "body": "Fixed; we keep watching."}
    assert customer_updates.send(incident, later, actor=support) == 1


def test_customers_never_read_the_internal_title(support):
    incident = open_incident(support, escalation=contact("Platform Down"), title="pb-2 OOM")
    values = customer_updates.variables(incident, None, "")
    assert values["incident"] == "Service disruption"
    incident.public_title = "API errors"
    assert customer_updates.variables(incident, None, "")["incident"] == "API errors"


def test_an_incident_can_be_taken_off_the_status_page(support, client):
    incident = open_incident(support, escalation=contact("Platform Down"))
    post_update(incident, PublicStatus.INVESTIGATING, "Looking.", "API errors", actor=support)
    assert [view.title for view in content.build().incidents] == ["API errors"]
    page = content.build()
    assert page.overall[1] == "We are looking into an issue" or page.overall[0] != "operational"

    client.force_login(support)
    response = client.post(
        reverse("admin:ops_incident_work", args=[incident.pk, "public_withdraw"]), follow=True
    )
    assert response.status_code == 200
    incident.refresh_from_db()
    assert not incident.public
    assert content.build().incidents == []
    with pytest.raises(Exception, match="not on the status page"):
        withdraw(incident, actor=support)


def test_the_headline_never_says_all_operational_with_a_public_incident_open():
    from ops.status_page.components import ComponentState, overall

    operational = [ComponentState.OPERATIONAL] * 3
    assert overall(operational) == ("operational", "All systems operational")
    key, words = overall(operational, open_incidents=1)
    assert key != "operational" and words == "We are looking into an issue"


def test_a_message_names_ten_stacks_and_counts_the_rest(support, make_tenant, make_stack):
    from ops.notifications import messages

    tenant = make_tenant("acme", name="Acme", contact_email="")
    stacks = [make_stack(tenant, f"bot-{n:02}") for n in range(12)]
    incident = open_incident(support, escalation=contact("Platform Down"), stacks=stacks)
    body = messages.incident_opened(incident).body
    assert "acme/bot-09 and 2 more" in body and "bot-10" not in body


def test_notifications_are_pruned_after_their_retention(support, settings):
    from ops.retention import prune_health_data

    incident = open_incident(support, escalation=contact("Platform Down"))
    add_channel(contact("Security Incident"), "json://127.0.0.1:9/security")
    old = Notification.objects.create(
        event=NotifyEvent.INCIDENT_OPENED,
        recipient_repr="x",
        title="t",
        body="b",
        incident=incident,
        status=DeliveryStatus.SENT,
        created_at=datetime(2020, 1, 1, tzinfo=UTC),
    )
    fresh = Notification.objects.create(
        event=NotifyEvent.INCIDENT_OPENED,
        recipient_repr="x",
        title="t",
        body="b",
        incident=incident,
        status=DeliveryStatus.SENT,
    )
    assert prune_health_data()["notifications"] == 1
    assert not Notification.objects.filter(pk=old.pk).exists()
    assert Notification.objects.filter(pk=fresh.pk).exists()
