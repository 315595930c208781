"""Helpers the incident tests share: making incidents, logging in, reading pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from zoneinfo import ZoneInfo

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from cfadmin.business_hours import BusinessHours
from cfadmin.models import AuditEvent
from ops import incidents
from ops.models import (
    EscalationContact,
    Incident,
    IncidentEvent,
    IncidentStatus,
    Procedure,
)
from tests.conftest import PASSWORD

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
ALL_DAYS = [*WEEKDAYS, "sat", "sun"]
OFFICE = BusinessHours.parse("09:00-17:00", WEEKDAYS, "Europe/Berlin")
UTC_OFFICE = BusinessHours.parse("09:00-17:00", WEEKDAYS, "UTC")

ADD = reverse("admin:ops_incident_add")
CHANGELIST = reverse("admin:ops_incident_changelist")
DASHBOARD = reverse("admin:ops_dashboard")
WORK_FORMS = (
    "cf-incident-status-form",
    "cf-incident-resolve-form",
    "cf-incident-note-form",
    "cf-incident-escalate-form",
    "cf-incident-checklist-form",
)


# --- ----------------------------------------------------------------------------------


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def contact(issue_type: str) -> EscalationContact:
    return EscalationContact.objects.get(issue_type=issue_type)


def procedure(slug: str) -> Procedure:
    return Procedure.objects.get(slug=slug, active=True)


def make_incident(
    actor=None, *, status: str = IncidentStatus.OPEN, escalation=None, **fields
) -> Incident:
    """An incident as the admin would save it (prepare_new), then put in `status`."""
    incident = Incident(title=fields.pop("title", "API slow"), escalation=escalation, **fields)
    incidents.prepare_new(incident, actor=actor)
    incident.save()
    if status != IncidentStatus.OPEN:
        Incident.objects.filter(pk=incident.pk).update(status=status)
        incident.refresh_from_db()
    return incident


def login(client: Client, user: User) -> Client:
    # django-axes needs the request (HttpRequest(): the test client has none to give).
    assert client.login(request=HttpRequest(), username=user.username, password=PASSWORD)
    return client


def page(response) -> str:
    return unescape(response.content.decode())


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def work_url(incident: Incident, action: str) -> str:
    return reverse("admin:ops_incident_work", args=[incident.pk, action])


def change_url(incident: Incident) -> str:
    return reverse("admin:ops_incident_change", args=[incident.pk])


def events(incident: Incident, kind: str | None = None) -> list[str]:
    rows = IncidentEvent.objects.filter(incident=incident)
    if kind is not None:
        rows = rows.filter(kind=kind)
    return list(rows.values_list("message", flat=True))


def audits(incident: Incident) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(target_id=str(incident.pk), target_repr=str(incident)).order_by(
            "id"
        )
    )


def timeline_rows(response) -> list[tuple[str, str]]:
    """(kind label, message) of each row of the change page's timeline."""
    table = re.search(r'<table[^>]*id="cf-timeline".*?</table>', page(response), re.S)
    assert table is not None
    rows = []
    for row in re.findall(r'<tr class="cf-event[^"]*">(.*?)</tr>', table.group(0), re.S):
        cells = [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        rows.append((cells[2], cells[3]))
    return rows


def select_value(html_page: str, name: str) -> list[str]:
    """The selected option values of the form's <select name=…>."""
    match = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html_page, re.S)
    assert match is not None, name
    return re.findall(r'<option value="([^"]*)"[^>]*selected', match.group(1))
