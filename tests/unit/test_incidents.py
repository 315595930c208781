"""Incidents without the admin: business hours and response targets, the incident model and
its timeline, the service functions that work an incident (ops/incidents.py), and checklist
runs inside an incident.

Nothing runs remotely: checklist probes are only queued (ORM broker), never run.
"""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from cfadmin.business_hours import BusinessHours
from cfadmin.models import AuditAction, AuditEvent
from ops import checklists, incidents
from ops.models import (
    INCIDENT_TRANSITIONS,
    ChecklistRun,
    EscalationContact,
    Incident,
    IncidentEvent,
    IncidentEventKind,
    IncidentStatus,
    ItemState,
    Outage,
    RunStatus,
    Severity,
    duration_text,
)
from ops.procedures import DAILY_HEALTH_CHECK, POST_DEPLOY
from tests.unit.incident_helpers import (
    ALL_DAYS,
    BERLIN,
    OFFICE,
    UTC_OFFICE,
    WEEKDAYS,
    audits,
    berlin,
    contact,
    events,
    make_incident,
    procedure,
    utc,
)

# --- business hours: parsing ------------------------------------------------------------------


def test_parse_reads_hours_days_and_zone():
    """Full day names and odd case are fine; weekdays count from Monday = 0."""
    hours = BusinessHours.parse(" 08:30-18:00 ", ["Monday", " WED", "fri", ""], "Europe/Berlin")
    assert (hours.opens, hours.closes) == (time(8, 30), time(18, 0))
    assert hours.weekdays == frozenset({0, 2, 4})
    assert hours.zone == BERLIN


@pytest.mark.parametrize(
    ("hours", "days", "zone", "variable", "rule"),
    [
        ("0900", WEEKDAYS, "UTC", "BUSINESS_HOURS='0900'", "HH:MM-HH:MM"),
        ("9am-5pm", WEEKDAYS, "UTC", "BUSINESS_HOURS='9am-5pm'", "HH:MM-HH:MM"),
        ("17:00-09:00", WEEKDAYS, "UTC", "BUSINESS_HOURS='17:00-09:00'", "closing time"),
        ("09:00-09:00", WEEKDAYS, "UTC", "BUSINESS_HOURS='09:00-09:00'", "closing time"),
        ("09:00-17:00", ["mon", "funday"], "UTC", "BUSINESS_DAYS='mon,funday'", "at least one"),
        ("09:00-17:00", [], "UTC", "BUSINESS_DAYS=''", "at least one day"),
        ("09:00-17:00", WEEKDAYS, "Mars/Olympus", "BUSINESS_TIME_ZONE='Mars/Olympus'", "known"),
    ],
)
def test_parse_errors_name_the_variable(hours, days, zone, variable, rule):
    """Each mistake says which setting is wrong, with its value, and the rule."""
    with pytest.raises(ValueError) as error:
        BusinessHours.parse(hours, days, zone)
    assert str(error.value).startswith(variable + ":")
    assert rule in str(error.value)


# --- business hours: adding business minutes --------------------------------------------------


@pytest.mark.parametrize(
    ("start", "minutes", "expected", "case"),
    [
        (berlin(2024, 5, 6, 10, 0), 90, berlin(2024, 5, 6, 11, 30), "within the day"),
        (berlin(2024, 5, 6, 9, 0), 480, berlin(2024, 5, 6, 17, 0), "exactly the whole day"),
        (berlin(2024, 5, 6, 16, 0), 120, berlin(2024, 5, 7, 10, 0), "across closing time"),
        (berlin(2024, 5, 6, 17, 0), 60, berlin(2024, 5, 7, 10, 0), "starting at closing time"),
        (berlin(2024, 5, 6, 20, 0), 60, berlin(2024, 5, 7, 10, 0), "starting after closing"),
        (berlin(2024, 5, 10, 16, 0), 120, berlin(2024, 5, 13, 10, 0), "across a weekend"),
        (berlin(2024, 5, 6, 7, 0), 30, berlin(2024, 5, 6, 9, 30), "starting before opening"),
        (berlin(2024, 5, 11, 12, 0), 60, berlin(2024, 5, 13, 10, 0), "starting on Saturday"),
        (berlin(2024, 5, 12, 23, 59), 240, berlin(2024, 5, 13, 13, 0), "starting on Sunday"),
        (berlin(2024, 5, 6, 10, 0), 960, berlin(2024, 5, 8, 10, 0), "two full days"),
    ],
)
def test_add_counts_business_minutes_only(start, minutes, expected, case):
    """Office hours 09:00-17:00 Mon-Fri in Berlin."""
    assert OFFICE.add(start, minutes) == expected, case


def test_add_converts_the_start_into_the_business_zone():
    """08:30 UTC in May is 10:30 in Berlin: 30 minutes later is 11:00 Berlin (09:00 UTC)."""
    due = OFFICE.add(utc(2024, 5, 6, 8, 30), 30)
    assert due == utc(2024, 5, 6, 9, 0)
    assert due.tzinfo == BERLIN


def test_add_across_the_dst_weekend():
    """Friday 16:00 CET + 2h ends Monday 10:00 CEST, which is 08:00 UTC (not 09:00)."""
    due = OFFICE.add(berlin(2024, 3, 29, 16, 0), 120)
    assert due == utc(2024, 4, 1, 8, 0)
    assert due.utcoffset() == timedelta(hours=2)


def test_add_on_the_dst_day_itself():
    """Open every day: Saturday 16:30 CET + 1h ends on DST Sunday at 09:30 CEST (07:30 UTC)."""
    every_day = BusinessHours.parse("09:00-17:00", ALL_DAYS, "Europe/Berlin")
    assert every_day.add(berlin(2024, 3, 30, 16, 30), 60) == utc(2024, 3, 31, 7, 30)
    assert every_day.add(berlin(2024, 3, 31, 8, 0), 60) == utc(2024, 3, 31, 8, 0)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (berlin(2024, 5, 6, 11, 15), berlin(2024, 5, 6, 11, 15)),  # in hours: now
        (berlin(2024, 5, 6, 6, 0), berlin(2024, 5, 6, 9, 0)),  # before opening: at opening
        (berlin(2024, 5, 10, 18, 0), berlin(2024, 5, 13, 9, 0)),  # Friday evening: Monday
        (berlin(2024, 5, 11, 10, 0), berlin(2024, 5, 13, 9, 0)),  # Saturday: Monday
    ],
)
def test_add_zero_minutes_is_the_next_business_moment(start, expected):
    assert OFFICE.add(start, 0) == expected


def test_add_in_a_window_spanning_the_dst_change_counts_real_minutes():
    """Hours 01:00-05:00: on 2024-03-31 Berlin skips 02:00-03:00, so the window holds 3 real
    hours. 3h of business time from 01:00 CET (00:00 UTC) end at 05:00 CEST (03:00 UTC)."""
    night = BusinessHours.parse("01:00-05:00", ALL_DAYS, "Europe/Berlin")
    assert night.add(berlin(2024, 3, 31, 1, 0), 180) == utc(2024, 3, 31, 3, 0)


def test_add_with_a_short_daily_window_finds_the_moment():
    """A 30-minute window on Mondays only: 4h of business time takes eight Mondays."""
    mondays = BusinessHours.parse("09:00-09:30", ["mon"], "UTC")
    assert mondays.add(utc(2024, 5, 6, 9, 0), 240) == utc(2024, 6, 24, 9, 30)


# --- the models -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "business", "text"),
    [(15, False, "15min"), (60, False, "1h"), (90, False, "90min"), (240, True, "4h business")],
)
def test_response_target_text(minutes, business, text):
    assert (
        EscalationContact(response_minutes=minutes, business_hours_only=business).response_target
        == text
    )


@pytest.mark.django_db
def test_response_due_of_a_24_7_contact_is_plain_minutes():
    """Platform Down (30 min, 24/7) counts Saturday night too."""
    start = utc(2024, 5, 11, 23, 50)
    assert contact("Platform Down").response_due(start) == start + timedelta(minutes=30)


@pytest.mark.django_db
@override_settings(BUSINESS_HOURS=UTC_OFFICE)
def test_response_due_of_a_business_hours_contact_skips_the_weekend():
    """Billing Issues (4h business): Friday 15:00 → Monday 11:00."""
    due = contact("Billing Issues").response_due(utc(2024, 5, 10, 15, 0))
    assert due == utc(2024, 5, 13, 11, 0)


@pytest.mark.django_db
def test_seeded_escalation_contacts():
    """The runbook's table, in priority order, with the targets the incidents count from."""
    rows = [
        (c.issue_type, c.team, c.response_target, c.hours) for c in EscalationContact.objects.all()
    ]
    assert rows == [
        ("Security Incident", "Security Team", "15min", "24/7"),
        ("Platform Down", "Platform Team", "30min", "24/7"),
        ("Customer Data Loss", "Backup Team", "1h", "24/7"),
        ("Billing Issues", "Billing Team", "4h business", "business hours"),
    ]


@pytest.mark.django_db
def test_set_response_target_with_a_24_7_contact():
    incident = Incident(opened_at=utc(2024, 5, 11, 3, 0), escalation=contact("Security Incident"))
    incident.set_response_target()
    assert incident.response_due_at == utc(2024, 5, 11, 3, 15)


@pytest.mark.django_db
@override_settings(BUSINESS_HOURS=BusinessHours.parse("09:00-17:00", WEEKDAYS, "Europe/Berlin"))
def test_set_response_target_with_a_business_hours_contact():
    """Opened Saturday: the 4h start Monday 09:00 Berlin, so 13:00 Berlin = 11:00 UTC."""
    incident = Incident(opened_at=utc(2024, 5, 11, 10, 0), escalation=contact("Billing Issues"))
    incident.set_response_target()
    assert incident.response_due_at == utc(2024, 5, 13, 11, 0)


def test_set_response_target_without_a_contact_clears_it():
    incident = Incident(opened_at=utc(2024, 5, 11, 10, 0), response_due_at=utc(2024, 5, 11))
    incident.set_response_target()
    assert incident.response_due_at is None


@pytest.mark.parametrize(
    ("due_in", "acknowledged_after", "state"),
    [
        (None, None, ""),
        (timedelta(minutes=10), None, "pending"),
        (timedelta(minutes=-10), None, "overdue"),
        (timedelta(minutes=10), timedelta(minutes=-20), "met"),
        (timedelta(minutes=-10), timedelta(minutes=-5), "missed"),
        (timedelta(0), timedelta(0), "met"),  # on the dot is in time
    ],
)
def test_response_state(due_in, acknowledged_after, state):
    """Due relative to now; acknowledged relative to now (None: not yet)."""
    now = timezone.now()
    incident = Incident(
        opened_at=now - timedelta(hours=1),
        response_due_at=None if due_in is None else now + due_in,
        acknowledged_at=None if acknowledged_after is None else now + acknowledged_after,
    )
    assert incident.response_state == state


ALL_STATUSES = list(IncidentStatus.values)


@pytest.mark.parametrize("current", ALL_STATUSES)
@pytest.mark.parametrize("target", ALL_STATUSES)
def test_can_become_follows_the_transition_table(current, target):
    expected = {
        ("open", "acknowledged"),
        ("open", "mitigated"),
        ("open", "resolved"),
        ("acknowledged", "mitigated"),
        ("acknowledged", "resolved"),
        ("mitigated", "acknowledged"),
        ("mitigated", "resolved"),
        ("resolved", "open"),
    }
    assert Incident(status=current).can_become(target) is ((current, target) in expected)
    assert ((current, target) in expected) is (target in INCIDENT_TRANSITIONS[current])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0s"),
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h 0m"),
        (3600 + 25 * 60, "1h 25m"),
        (86400 - 1, "23h 59m"),
        (86400 + 3 * 3600 + 59 * 60, "1d 3h"),
        (12 * 86400, "12d 0h"),
    ],
)
def test_duration_text(seconds, text):
    assert duration_text(timedelta(seconds=seconds)) == text


def test_incident_duration_stops_at_resolution():
    opened = utc(2024, 5, 1, 10, 0)
    resolved = Incident(opened_at=opened, resolved_at=opened + timedelta(hours=2, minutes=5))
    assert resolved.duration_text == "2h 5m"
    ongoing = Incident(opened_at=timezone.now() - timedelta(minutes=7, seconds=5))
    assert ongoing.duration_text == "7m"


@pytest.mark.django_db
def test_incident_event_str_and_timeline_order(support):
    """Events read oldest first (then by id); str shows when, the kind and the message's start."""
    incident = make_incident(support)
    later = IncidentEvent.objects.create(
        incident=incident, kind="note", message="second", actor_repr="x", at=utc(2024, 5, 1, 11)
    )
    earlier = IncidentEvent.objects.create(
        incident=incident,
        kind="status",
        message="first " + "y" * 100,
        actor_repr="x",
        at=utc(2024, 5, 1, 10, 30),
    )
    assert list(incident.events.all()) == [earlier, later]
    assert str(earlier) == "2024-05-01 10:30 Status changed: first " + "y" * 54


@pytest.mark.django_db
def test_incident_str_and_unresolved(support):
    first = make_incident(support, title="Disk full")
    done = make_incident(support, title="Old", status=IncidentStatus.RESOLVED)
    assert str(first) == f"#{first.pk} Disk full"
    assert list(Incident.objects.unresolved()) == [first]
    assert done not in Incident.objects.unresolved()


@pytest.mark.django_db
def test_checklist_run_str_names_the_incident(support, make_stack):
    incident = make_incident(support)
    daily = procedure(DAILY_HEALTH_CHECK)
    run = checklists.start_run(daily, actor=support, incident=incident)
    assert str(run) == f"Daily health check — incident #{incident.pk} #{run.pk}"
    stack = make_stack()
    with_stack = checklists.start_run(daily, actor=support, stack=stack, incident=incident)
    assert (
        str(with_stack) == f"Daily health check — customer-123/customer-123-main #{with_stack.pk}"
    )
    plain = checklists.start_run(daily, actor=support)
    assert str(plain) == f"Daily health check #{plain.pk}"


# --- ops/incidents.py: opening ----------------------------------------------------------------


@pytest.mark.django_db
def test_prepare_new_sets_opener_time_status_and_target(support):
    before = timezone.now()
    incident = Incident(
        title="x", status=IncidentStatus.RESOLVED, escalation=contact("Platform Down")
    )
    incidents.prepare_new(incident, actor=support)
    assert incident.status == IncidentStatus.OPEN
    assert (incident.opened_by, incident.opened_by_repr) == (support, "support")
    assert before <= incident.opened_at <= timezone.now()
    assert incident.response_due_at == incident.opened_at + timedelta(minutes=30)


def test_prepare_new_by_a_label_has_no_user():
    incident = Incident(title="x")
    incidents.prepare_new(incident, actor="cli:root")
    assert (incident.opened_by, incident.opened_by_repr) == (None, "cli:root")
    assert incident.response_due_at is None


@pytest.mark.django_db
def test_record_opened_names_contact_target_and_what_is_affected(support, make_stack):
    stack = make_stack()
    other = make_stack("acme", "acme-main")
    outage = Outage.objects.create(check_name="pocketbase", started_at=utc(2024, 5, 1, 10, 0))
    incident = make_incident(support, title="PB down", severity=Severity.SEV1)
    Incident.objects.filter(pk=incident.pk).update(
        escalation=contact("Platform Down"), response_due_at=utc(2024, 5, 1, 10, 30)
    )
    incident.refresh_from_db()
    incident.stacks.set([stack, other])
    incident.tenants.set([stack.tenant])
    incident.outages.set([outage])
    event = incidents.record_opened(incident, actor=support)
    due = timezone.localtime(utc(2024, 5, 1, 10, 30))
    assert event.kind == IncidentEventKind.OPENED
    assert event.actor == support and event.actor_repr == "support"
    assert event.message == (
        "Opened: PB down (SEV1 — platform down or data at risk). Platform Down: Platform Team "
        f"responds within 30min, by {due:%Y-%m-%d %H:%M}. Affects tenants customer-123; "
        "stacks acme/acme-main, customer-123/customer-123-main; "
        "outages pocketbase outage from 2024-05-01 10:00"
    )


@pytest.mark.django_db
def test_record_opened_without_contact_or_links(support):
    incident = make_incident(support, title="Typo on the status page", severity=Severity.SEV4)
    event = incidents.record_opened(incident, actor=support)
    assert event.message == "Opened: Typo on the status page (SEV4 — minor, no customer impact)"


# --- ops/incidents.py: notes ------------------------------------------------------------------


@pytest.mark.django_db
def test_add_note_writes_an_event_and_an_audit_event(support):
    incident = make_incident(support)
    event = incidents.add_note(incident, "  restarted the worker \n", actor=support)
    assert (event.kind, event.message, event.actor) == ("note", "restarted the worker", support)
    [audit] = audits(incident)
    assert (audit.action, audit.message, audit.actor) == (
        AuditAction.UPDATE,
        "Note: restarted the worker",
        support,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("note", ["", "   \n ", None, "x" * (incidents.NOTE_MAX_LENGTH + 1)])
def test_add_note_refuses_blank_or_huge_notes(support, note):
    incident = make_incident(support)
    with pytest.raises(ValidationError) as error:
        incidents.add_note(incident, note, actor=support)
    assert list(error.value.message_dict) == ["note"]
    assert events(incident) == [] and audits(incident) == []


# --- ops/incidents.py: status changes ---------------------------------------------------------

ALLOWED = [
    (current, target) for current, targets in INCIDENT_TRANSITIONS.items() for target in targets
]
DISALLOWED = [
    (current, target)
    for current in ALL_STATUSES
    for target in ALL_STATUSES
    if target not in INCIDENT_TRANSITIONS[current]
]


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_change_status_allowed_transition(support, current, target):
    """Each allowed move updates the row, adds a timeline line and an audit event."""
    incident = make_incident(support, status=current)
    previous = IncidentStatus(current).label
    new = IncidentStatus(target).label
    incidents.change_status(
        incident, target, actor=support, note="because", resolution="rolled back"
    )
    incident.refresh_from_db()
    assert incident.status == target
    [message] = events(incident, IncidentEventKind.STATUS)
    expected = f"{previous} → {new}"
    if target == IncidentStatus.RESOLVED:
        expected += ". Resolution: rolled back"
    assert message == expected + " — because"
    [audit] = audits(incident)
    assert audit.action == AuditAction.UPDATE
    assert audit.message == f"Status: {message}"
    assert audit.changes == {"fields": {"status": [previous, new]}}


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), DISALLOWED)
def test_change_status_disallowed_transition(support, current, target):
    incident = make_incident(support, status=current)
    with pytest.raises(ValidationError) as error:
        incidents.change_status(incident, target, actor=support, note="n", resolution="r")
    assert list(error.value.message_dict) == ["status"]
    assert "cannot become" in error.value.message_dict["status"][0]
    assert Incident.objects.get(pk=incident.pk).status == current
    assert events(incident) == [] and audits(incident) == []


@pytest.mark.django_db
def test_change_status_to_an_unknown_status(support):
    incident = make_incident(support)
    with pytest.raises(ValidationError) as error:
        incidents.change_status(incident, "closed", actor=support)
    assert error.value.message_dict == {"status": ["Unknown status 'closed'."]}


@pytest.mark.django_db
def test_resolving_needs_a_resolution(support):
    incident = make_incident(support, status=IncidentStatus.MITIGATED)
    with pytest.raises(ValidationError) as error:
        incidents.change_status(incident, IncidentStatus.RESOLVED, actor=support, resolution=" ")
    assert list(error.value.message_dict) == ["resolution"]
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_at, incident.resolution) == ("mitigated", None, "")
    assert events(incident) == [] and audits(incident) == []


@pytest.mark.django_db
def test_resolving_stores_the_resolution_and_time(support):
    incident = make_incident(support, status=IncidentStatus.ACKNOWLEDGED)
    before = timezone.now()
    incidents.change_status(
        incident, IncidentStatus.RESOLVED, actor=support, resolution=" Restarted PocketBase "
    )
    incident.refresh_from_db()
    assert incident.resolution == "Restarted PocketBase"
    assert before <= incident.resolved_at <= timezone.now()
    assert events(incident) == ["Acknowledged → Resolved. Resolution: Restarted PocketBase"]


@pytest.mark.django_db
def test_reopening_needs_a_reason_and_clears_resolved_at(support):
    incident = make_incident(support)
    incidents.change_status(incident, IncidentStatus.RESOLVED, actor=support, resolution="fixed")
    with pytest.raises(ValidationError) as error:
        incidents.change_status(incident, IncidentStatus.OPEN, actor=support, note="  ")
    assert list(error.value.message_dict) == ["note"]
    assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.RESOLVED

    incidents.change_status(incident, IncidentStatus.OPEN, actor=support, note="it is back")
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_at) == (IncidentStatus.OPEN, None)
    assert events(incident)[-1] == "Resolved → Open — it is back"
    # resolving again may reuse what fixed it last time
    incidents.change_status(incident, IncidentStatus.RESOLVED, actor=support)
    assert Incident.objects.get(pk=incident.pk).resolution == "fixed"


@pytest.mark.django_db
def test_first_move_out_of_open_sets_acknowledged_at_once(support):
    incident = make_incident(support)
    assert incident.acknowledged_at is None
    incidents.change_status(incident, IncidentStatus.MITIGATED, actor=support)
    incident.refresh_from_db()
    first = incident.acknowledged_at
    assert first is not None and incident.mitigated_at == first
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=support)
    incident.refresh_from_db()
    assert incident.acknowledged_at == first


@pytest.mark.django_db
def test_acknowledging_in_time_meets_the_target(support):
    incident = make_incident(support, escalation=contact("Platform Down"))
    assert incident.response_state == "pending"
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=support)
    assert Incident.objects.get(pk=incident.pk).response_state == "met"


@pytest.mark.django_db
def test_change_status_of_a_stale_incident_writes_nothing(support):
    """Someone else acknowledged meanwhile: this copy still says open."""
    incident = make_incident(support)
    stale = Incident.objects.get(pk=incident.pk)
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=support)
    count = IncidentEvent.objects.count(), AuditEvent.objects.count()
    with pytest.raises(ValidationError, match="changed this incident's status meanwhile"):
        incidents.change_status(stale, IncidentStatus.MITIGATED, actor=support)
    incident.refresh_from_db()
    assert (incident.status, incident.mitigated_at) == (IncidentStatus.ACKNOWLEDGED, None)
    assert (IncidentEvent.objects.count(), AuditEvent.objects.count()) == count


# --- ops/incidents.py: escalation -------------------------------------------------------------


@pytest.mark.django_db
def test_escalate_names_the_team_target_and_how(support):
    security = contact("Security Incident")
    security.phone, security.chat = "+49 30 123", "#sec-oncall"
    security.save()
    incident = make_incident(support, escalation=contact("Platform Down"))
    due = incident.response_due_at
    event = incidents.escalate(incident, security, actor=support, how=" paged ")
    assert event.kind == IncidentEventKind.ESCALATED
    assert event.message == (
        "Escalated to Security Team (Security Incident, respond within 15min) "
        "via +49 30 123, #sec-oncall — paged"
    )
    [audit] = audits(incident)
    assert (audit.action, audit.message) == (AuditAction.UPDATE, event.message)
    incident.refresh_from_db()  # the issue type it had stays, and so does its target
    assert (incident.escalation.issue_type, incident.response_due_at) == ("Platform Down", due)


@pytest.mark.django_db
def test_escalate_without_issue_type_adopts_the_contact(support):
    incident = make_incident(support)
    assert incident.response_due_at is None
    before = timezone.now()
    event = incidents.escalate(incident, contact("Customer Data Loss"), actor=support)
    assert event.message == "Escalated to Backup Team (Customer Data Loss, respond within 1h)"
    incident.refresh_from_db()
    assert incident.escalation == contact("Customer Data Loss")
    assert (
        before + timedelta(hours=1)
        <= incident.response_due_at
        <= timezone.now() + timedelta(hours=1)
    )


# --- ops/incidents.py: edits ------------------------------------------------------------------


@pytest.mark.django_db
def test_record_edit_lists_links_and_severity(support, make_stack, make_tenant):
    stack = make_stack()
    old_tenant = make_tenant("acme")
    incident = make_incident(support, severity=Severity.SEV3)
    incident.tenants.set([old_tenant])
    before = incidents.details(incident)
    incident.severity = Severity.SEV1
    incident.summary = "now with details"
    incident.save()
    incident.stacks.set([stack])
    incident.tenants.set([stack.tenant])
    event = incidents.record_edit(incident, before, actor=support, escalation_changed=False)
    assert event.kind == IncidentEventKind.CHANGED
    assert event.message == (
        "Severity: SEV3 → SEV1; summary edited; linked tenant customer-123; unlinked tenant acme; "
        "linked stack customer-123/customer-123-main"
    )


@pytest.mark.django_db
def test_record_edit_with_nothing_changed_adds_nothing(support):
    incident = make_incident(support)
    before = incidents.details(incident)
    assert incidents.record_edit(incident, before, actor=support, escalation_changed=False) is None
    assert events(incident) == []


@pytest.mark.django_db
def test_record_edit_counts_a_new_issue_types_target_from_now(support):
    """Re-routed to another team: that team's clock starts when it is routed to them."""
    incident = make_incident(support, escalation=contact("Customer Data Loss"))
    Incident.objects.filter(pk=incident.pk).update(opened_at=utc(2024, 5, 1, 10, 0))
    incident.refresh_from_db()
    before = incidents.details(incident)
    incident.escalation = contact("Security Incident")
    incident.save()
    start = timezone.now()
    event = incidents.record_edit(incident, before, actor=support, escalation_changed=True)
    due = Incident.objects.get(pk=incident.pk).response_due_at
    assert start + timedelta(minutes=15) <= due <= timezone.now() + timedelta(minutes=15)
    assert event.message == ("Issue type: Customer Data Loss → Security Incident")


# --- ops/incidents.py: from an outage ---------------------------------------------------------


@pytest.mark.django_db
def test_initial_from_a_critical_outage():
    outage = Outage.objects.create(
        check_name="pocketbase",
        started_at=utc(2024, 5, 1, 10, 5),
        first_message="connection refused",
        last_message="timed out",
    )
    started = timezone.localtime(outage.started_at)
    assert incidents.initial_from_outage(outage) == {
        "title": f"pocketbase down since {started:%Y-%m-%d %H:%M}",
        "summary": "timed out",
        "outages": str(outage.pk),
        "severity": "sev1",
        "escalation": str(contact("Platform Down").pk),
    }


@pytest.mark.django_db
def test_initial_from_a_non_critical_outage():
    outage = Outage.objects.create(
        check_name="disk_usage", started_at=utc(2024, 5, 1, 10, 5), first_message="91% used"
    )
    initial = incidents.initial_from_outage(outage)
    assert initial["severity"] == "sev2"
    assert initial["summary"] == "91% used"
    assert "escalation" not in initial


# --- ops/checklists.py: runs inside an incident -----------------------------------------------


@pytest.mark.django_db
def test_start_run_with_incident_adds_a_checklist_event(support):
    incident = make_incident(support)
    run = checklists.start_run(procedure(DAILY_HEALTH_CHECK), actor=support, incident=incident)
    assert run.incident == incident
    assert events(incident, IncidentEventKind.CHECKLIST) == [
        f"Started checklist “Daily health check” (run #{run.pk})"
    ]


@pytest.mark.django_db
def test_start_run_for_incident_uses_its_one_stack(support, make_stack, make_tenant):
    stack = make_stack()
    incident = make_incident(support)
    incident.stacks.set([stack])
    incident.tenants.set([make_tenant("acme"), stack.tenant])
    run = checklists.start_run_for_incident(procedure(POST_DEPLOY), incident, actor=support)
    assert (run.stack, run.tenant, run.incident) == (stack, stack.tenant, incident)


@pytest.mark.django_db
def test_start_run_for_incident_uses_its_one_tenant(support, make_stack):
    one = make_stack()
    two = make_stack("customer-123", "customer-123-second")
    incident = make_incident(support)
    incident.stacks.set([one, two])
    incident.tenants.set([one.tenant])
    run = checklists.start_run_for_incident(procedure(DAILY_HEALTH_CHECK), incident, actor=support)
    assert (run.stack, run.tenant) == (None, one.tenant)


@pytest.mark.django_db
def test_start_run_for_incident_with_nothing_linked(support):
    incident = make_incident(support)
    run = checklists.start_run_for_incident(procedure(DAILY_HEALTH_CHECK), incident, actor=support)
    assert (run.stack, run.tenant, run.incident) == (None, None, incident)


@pytest.mark.django_db
@pytest.mark.parametrize("stack_count", [0, 2])
def test_validation_procedure_needs_exactly_one_stack(support, make_stack, stack_count):
    incident = make_incident(support)
    incident.stacks.set([make_stack("customer-123", f"s-{i}") for i in range(stack_count)])
    with pytest.raises(ValidationError) as error:
        checklists.start_run_for_incident(procedure(POST_DEPLOY), incident, actor=support)
    assert list(error.value.message_dict) == ["procedure"]
    assert "link exactly one stack" in error.value.message_dict["procedure"][0]
    assert not ChecklistRun.objects.filter(incident=incident).exists()
    assert events(incident) == []


@pytest.mark.django_db
def test_completing_a_run_of_an_incident_adds_an_event(support):
    incident = make_incident(support)
    run = checklists.start_run(procedure(DAILY_HEALTH_CHECK), actor=support, incident=incident)
    items = list(run.items.select_related("run", "step"))
    assert len(items) == 4
    for item in items[:-1]:
        checklists.settle_item(item, ItemState.DONE, actor=support)
    assert len(events(incident)) == 1  # not complete yet
    checklists.settle_item(items[-1], ItemState.SKIPPED, actor=support, note="no disk here")
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert events(incident, IncidentEventKind.CHECKLIST) == [
        f"Started checklist “Daily health check” (run #{run.pk})",
        f"Completed checklist “Daily health check” (run #{run.pk})",
    ]
