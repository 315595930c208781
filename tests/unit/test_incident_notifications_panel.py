"""The notifications on an incident's page (issue 16 point 4, ops.response.notifications_panel):
the latest rows (what, to whom, outcome, attempts, when, last error), newest first, a link to
all of them on the Notifications page, the same queries for 1 or 30 rows, and while nobody has
acknowledged, when and whom cfadmin pages next."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ops.models import DeliveryStatus, EscalationContact, Incident, Notification, NotifyEvent
from ops.response import notifications_panel as feature
from tests.unit.incident_helpers import change_url, login, make_incident, page
from tests.unit.notification_helpers import add_channel

pytestmark = pytest.mark.django_db


def contact(issue_type: str) -> EscalationContact:
    return EscalationContact.objects.get(issue_type=issue_type)


def add_notifications(incident: Incident, count: int, **fields) -> list[Notification]:
    start = timezone.now() - timedelta(hours=2)
    return [
        Notification.objects.create(
            event=fields.get("event", NotifyEvent.INCIDENT_OPENED),
            recipient_repr=fields.get("recipient_repr", f"Team {i}"),
            title=f"message {i}",
            body="x" * 2000,
            incident=incident,
            status=fields.get("status", DeliveryStatus.SENT),
            attempts=fields.get("attempts", 1),
            last_error=fields.get("last_error", ""),
            created_at=start + timedelta(minutes=i),
        )
        for i in range(count)
    ]


def panel_rows(html: str) -> list[list[str]]:
    table = re.search(r'<table[^>]*id="cf-notifications".*?</table>', html, re.S)
    assert table is not None
    rows = []
    for row in re.findall(r'<tr class="cf-notification"[^>]*>(.*?)</tr>', table.group(0), re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows.append([" ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells])
    return rows


def test_the_page_lists_the_incidents_notifications_newest_first(support, client):
    incident = make_incident(support, escalation=contact("Platform Down"))
    other = make_incident(support, title="Another")
    add_notifications(other, 1, recipient_repr="Not this one")
    add_notifications(incident, 1, recipient_repr="Platform Team (webhook)")
    add_notifications(
        incident,
        1,
        event=NotifyEvent.CUSTOMER_UPDATE,
        recipient_repr="Acme <ops@acme.test>",
        status=DeliveryStatus.RETRYING,
        attempts=2,
        last_error="HTTP 500 from the receiver",
    )  # created at the same moment as the other: the later row is newer

    response = login(client, support).get(change_url(incident))
    html = page(response)

    rows = panel_rows(response.content.decode())
    assert [row[:4] for row in rows] == [
        ["Customer update", "Acme <ops@acme.test>", "Retrying", "2"],
        ["Incident opened", "Platform Team (webhook)", "Sent", "1"],
    ]
    assert rows[0][5] == "HTTP 500 from the receiver" and rows[1][5] == "—"
    assert 'class="cf-check cf-check-warning">Retrying' in html
    listing = reverse("admin:ops_notification_changelist") + f"?incident__id__exact={incident.pk}"
    assert f'href="{listing}"' in html
    assert "Not this one" not in html


def test_an_incident_without_notifications_or_pending_page_has_no_panel(support, client):
    incident = make_incident(support)
    html = page(login(client, support).get(change_url(incident)))
    assert 'id="cf-panel-notifications"' not in html
    assert feature.panel(incident, None) is None


def test_the_panel_costs_the_same_queries_for_one_or_thirty_notifications(superuser, client):
    incident = make_incident(superuser, escalation=contact("Platform Down"))
    add_notifications(incident, 1)
    client.force_login(superuser)
    client.get(change_url(incident))  # warm-up

    def queries() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(change_url(incident))
        return len(captured), response.content.decode()

    few, _ = queries()
    add_notifications(incident, 29)
    many, html = queries()

    assert few == many
    rows = panel_rows(html)
    assert len(rows) == feature.NOTIFICATIONS_SHOWN
    assert rows[0][1] == "Team 28"  # the newest (the first row was "Team 0")
    assert "All 30 notifications on the Notifications page" in unescape(html)


def test_the_panel_says_when_and_whom_cfadmin_pages_next(support, client):
    incident = make_incident(support, escalation=contact("Platform Down"))
    # Security Team comes first in priority order but has no channel: passed over.
    add_channel(contact("Customer Data Loss"), "backup-team@example.test")
    due = timezone.localtime(timezone.now() + timedelta(minutes=20))
    Incident.objects.filter(pk=incident.pk).update(next_page_at=due)

    html = page(login(client, support).get(change_url(incident)))

    line = re.search(r'<p id="cf-next-page"[^>]*>(.*?)</p>', html, re.S)
    assert line is not None
    assert line.group(1) == f"If nobody acknowledges by {due:%H:%M}, Backup Team is paged."

    Incident.objects.filter(pk=incident.pk).update(next_page_at=None)  # acknowledged
    assert 'id="cf-next-page"' not in page(client.get(change_url(incident)))


def test_with_nobody_left_to_page_the_panel_says_so(support):
    incident = make_incident(support, escalation=contact("Platform Down"))
    incident.next_page_at = timezone.now() + timedelta(minutes=5)
    assert feature.next_page_line(incident).endswith(", nobody else is left to page.")
