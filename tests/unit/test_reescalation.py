"""Re-escalation (issue 16, point 3): an open incident nobody acknowledged by its respond-by
time pages the next contact in priority order, and says so on the timeline; at that contact's
own target the next one; acknowledging stops it. Quiet hours: a business-hours-only contact is
paged in business hours only (its notification is held until the next opening).

The clock is advanced by passing `now` (reescalate_due(now=...)), always into the future, so
what delivery compares with the real clock (held until later) holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from django.utils.module_loading import import_string

from cfadmin.business_hours import BusinessHours
from cfadmin.models import AuditEvent
from cfadmin.schedules import declared_schedules
from ops import incidents
from ops.models import (
    DeliveryStatus,
    EscalationContact,
    Incident,
    IncidentEventKind,
    IncidentStatus,
    NotificationRule,
    NotifyEvent,
)
from ops.notifications import paging
from ops.schedules import REESCALATION_SCHEDULE
from tests.unit.incident_helpers import ALL_DAYS, WEEKDAYS, events
from tests.unit.notification_helpers import (
    add_channel,
    contact,
    default_rules,
    notifications,
    open_incident,
)

pytestmark = pytest.mark.django_db
NIGHTS_OFF = BusinessHours.parse("09:00-17:00", ALL_DAYS, "UTC")
TEAMS = ("Security Incident", "Platform Down", "Customer Data Loss", "Billing Issues")


@pytest.fixture(autouse=True)
def _rules(monkeypatch):
    default_rules()
    monkeypatch.setattr("ops.notifications.delivery.enqueue", lambda *args, **kwargs: None)


@pytest.fixture
def reachable():
    """Every contact of the escalation table reachable on one channel, around the clock."""
    EscalationContact.objects.update(business_hours_only=False)
    return {name: add_channel(contact(name), f"json://127.0.0.1:9/{name[:8]}") for name in TEAMS}


def paged(incident: Incident) -> list[str]:
    rows = notifications(incident=incident, event=NotifyEvent.INCIDENT_REESCALATED)
    return [row.channel.contact.team for row in rows]


def page_at(incident: Incident):
    return Incident.objects.get(pk=incident.pk).next_page_at


def test_nobody_acknowledging_pages_the_next_contacts_in_priority_order(support, reachable):
    incident = open_incident(support, escalation=contact("Platform Down"))
    due = incident.response_due_at
    assert page_at(incident) == due

    assert paging.reescalate_due(now=due - timedelta(seconds=1)) == 0
    assert paged(incident) == []

    # The Platform Team missed its 30 minutes: the first contact in priority order not yet
    # paged is the Security Team (priority 10); its 15 minutes count from now.
    assert paging.reescalate_due(now=due) == 1
    assert paged(incident) == ["Security Team"]
    [row] = notifications(event=NotifyEvent.INCIDENT_REESCALATED)
    assert row.title.startswith(f"[SEV1] Not acknowledged — paging Security Team: #{incident.pk}")
    assert row.status == DeliveryStatus.PENDING
    second = page_at(incident)
    assert second == due + timedelta(minutes=15)
    [line] = events(incident, IncidentEventKind.PAGED)
    missed = timezone.localtime(due)
    assert line.startswith(
        f"Not acknowledged by {missed:%Y-%m-%d %H:%M}: re-escalated to Security Team "
        f"(Security Incident), who respond by {timezone.localtime(second):%Y-%m-%d %H:%M}"
    )
    assert line.endswith("Paged on 1 channel.")
    assert AuditEvent.objects.filter(message=line).exists()

    # At the Security Team's target, the next one not yet paged: the Backup Team.
    assert paging.reescalate_due(now=second) == 1
    assert paged(incident) == ["Security Team", "Backup Team"]
    third = page_at(incident)
    assert third == second + timedelta(minutes=60)
    assert paging.reescalate_due(now=third) == 1
    assert paged(incident) == ["Security Team", "Backup Team", "Billing Team"]

    # Everyone was paged: one last line, and no more pages.
    assert paging.reescalate_due(now=page_at(incident)) == 1
    assert page_at(incident) is None
    assert events(incident, IncidentEventKind.PAGED)[-1].endswith(
        "nobody is left to page in the escalation table."
    )
    assert paging.reescalate_due(now=third + timedelta(days=1)) == 0


def test_acknowledging_stops_the_pages(support, reachable):
    incident = open_incident(support, escalation=contact("Platform Down"))
    paging.reescalate_due(now=incident.response_due_at)
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=support)
    assert page_at(incident) is None
    later = incident.response_due_at + timedelta(days=1)
    assert paging.reescalate_due(now=later) == 0
    assert paged(incident) == ["Security Team"]
    # Even a next_page_at left over (a race with the acknowledgement) pages nobody.
    Incident.objects.filter(pk=incident.pk).update(next_page_at=incident.response_due_at)
    assert paging.reescalate_due(now=later) == 0
    assert paged(incident) == ["Security Team"]


def test_contacts_already_paged_or_unreachable_are_passed_over(support, reachable):
    reachable["Security Incident"].delete()
    incident = open_incident(support, escalation=contact("Platform Down"))
    incidents.escalate(incident, contact("Customer Data Loss"), actor=support)
    paging.reescalate_due(now=incident.response_due_at)
    assert paged(incident) == ["Billing Team"]
    assert (
        "(Security Team passed over: no enabled channel)"
        in events(incident, IncidentEventKind.PAGED)[-1]
    )


def test_one_page_per_due_moment_however_many_passes(support, reachable):
    incident = open_incident(support, escalation=contact("Platform Down"))
    due = incident.response_due_at
    assert paging.reescalate_due(now=due) == 1
    assert paging.reescalate_due(now=due) == 0
    assert not paging.page_next(incident.pk, due)
    assert paged(incident) == ["Security Team"]


def test_disabling_the_reescalation_rule_turns_it_off(support, reachable):
    NotificationRule.objects.filter(event=NotifyEvent.INCIDENT_REESCALATED).update(enabled=False)
    incident = open_incident(support, escalation=contact("Platform Down"))
    assert paging.reescalate_due(now=incident.response_due_at) == 0
    assert paged(incident) == [] and page_at(incident) is None
    assert events(incident, IncidentEventKind.PAGED) == []


def test_a_rule_for_a_user_watches_every_reescalation(support, operator, reachable):
    watcher = add_channel(operator, "json://127.0.0.1:9/operator")
    NotificationRule.objects.create(
        event=NotifyEvent.INCIDENT_REESCALATED, recipient="user", user=operator
    )
    incident = open_incident(support, escalation=contact("Platform Down"))
    paging.reescalate_due(now=incident.response_due_at)
    rows = notifications(event=NotifyEvent.INCIDENT_REESCALATED)
    assert [row.channel for row in rows] == [reachable["Security Incident"], watcher]
    assert events(incident, IncidentEventKind.PAGED)[-1].endswith("Paged on 1 channel.")


def test_the_schedule_runs_every_minute():
    [spec] = [spec for spec in declared_schedules() if spec.name == REESCALATION_SCHEDULE]
    assert spec.interval() == 1
    assert import_string(spec.func)() == {"reescalated": 0}


# --- quiet hours ----------------------------------------------------------------------------


@override_settings(BUSINESS_HOURS=BusinessHours.parse("09:00-17:00", WEEKDAYS, "UTC"))
def test_business_hours_contacts_are_paged_in_their_hours_only():
    billing, platform = contact("Billing Issues"), contact("Platform Down")
    assert billing.business_hours_only and not platform.business_hours_only
    friday_evening = datetime(2031, 1, 3, 18, 30, tzinfo=UTC)
    monday_opening = datetime(2031, 1, 6, 9, 0, tzinfo=UTC)
    assert paging.not_before_for(billing, friday_evening) == monday_opening
    assert paging.not_before_for(billing, monday_opening) is None
    assert paging.not_before_for(billing, datetime(2031, 1, 6, 12, tzinfo=UTC)) is None
    assert paging.not_before_for(platform, friday_evening) is None
    assert paging.not_before_for(None, friday_evening) is None


@override_settings(BUSINESS_HOURS=NIGHTS_OFF)
def test_a_business_hours_contact_paged_at_night_is_held_until_the_opening(support):
    billing = contact("Billing Issues")
    channel = add_channel(billing, "json://127.0.0.1:9/billing")
    incident = open_incident(support, escalation=contact("Platform Down"))
    night = (
        (timezone.now() + timedelta(days=2))
        .astimezone(UTC)
        .replace(hour=22, minute=0, second=0, microsecond=0)
    )
    opening = (night + timedelta(days=1)).replace(hour=9)

    assert paging.reescalate_due(now=night) == 1
    [row] = notifications(event=NotifyEvent.INCIDENT_REESCALATED)
    assert (row.channel, row.status, row.next_attempt_at) == (
        channel,
        DeliveryStatus.HELD,
        opening,
    )
    # Its 4 business hours count from the opening too.
    assert page_at(incident) == opening + timedelta(hours=4)
    line = events(incident, IncidentEventKind.PAGED)[-1]
    assert f"held until {timezone.localtime(opening):%Y-%m-%d %H:%M} (their hours)" in line
    assert "Security Team, Backup Team passed over" in line
