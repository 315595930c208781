"""The incident feature "notifications_panel" (issue 16 point 4): the messages cfadmin sent
about an incident, on its page — the latest few (what, to whom, outcome, attempts, when, the
last error) with a link to all of them on the Notifications page — and, while nobody has
acknowledged it, when and whom it pages next (ops.notifications.paging). Read-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, Window
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from ops import response
from ops.models import Incident
from ops.models.notifications import WAITING_STATES, DeliveryStatus, Notification
from ops.notifications import paging
from ops.response import Feature, Panel

NOTIFICATIONS_SHOWN = 20

# A delivery's badge, in the health checks' colours (cfadmin.css): sent is green, given up red,
# still trying orange; waiting and suppressed stay grey.
STATUS_CLASSES = {
    DeliveryStatus.SENT: "cf-check cf-check-ok",
    DeliveryStatus.FAILED: "cf-check cf-check-down",
    DeliveryStatus.RETRYING: "cf-check cf-check-warning",
    DeliveryStatus.HELD: "cf-check cf-check-warning",
}
ROW_FIELDS = (
    "id",
    "event",
    "recipient_repr",
    "status",
    "attempts",
    "created_at",
    "sent_at",
    "next_attempt_at",
    "last_error",
)


def status_badge(notification: Notification) -> str:
    css = STATUS_CLASSES.get(notification.status, "cf-check")
    return format_html('<span class="{}">{}</span>', css, notification.get_status_display())


def latest(incident: Incident) -> tuple[list[Notification], int]:
    """The newest NOTIFICATIONS_SHOWN rows and how many there are, in one query (a window
    count over every row of the incident, read with the first page of them)."""
    rows = list(
        Notification.objects.filter(incident=incident)
        .only(*ROW_FIELDS)
        .annotate(total=Window(Count("id")))
        .order_by("-created_at", "-id")[:NOTIFICATIONS_SHOWN]
    )
    for row in rows:
        row.badge = status_badge(row)
        row.next_try = row.next_attempt_at if row.status in WAITING_STATES else None
    return rows, rows[0].total if rows else 0


def all_url(incident: Incident) -> str:
    return reverse("admin:ops_notification_changelist") + f"?incident__id__exact={incident.pk}"


def next_page_line(incident: Incident) -> str:
    """'If nobody acknowledges by 03:40, Security Team is paged.' while a page is pending."""
    moment: datetime | None = incident.next_page_at
    if moment is None:
        return ""
    by = f"{timezone.localtime(moment):%H:%M}"
    if timezone.localtime(moment).date() != timezone.localdate():
        by = f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"
    contact, _ = paging.next_contact(incident)
    if contact is None:
        return f"If nobody acknowledges by {by}, nobody else is left to page."
    return f"If nobody acknowledges by {by}, {contact.team} is paged."


def panel(incident: Incident, request: HttpRequest) -> Panel | None:
    """On an incident that has notifications or a page pending."""
    has_rows = response.present(incident, "notifications_panel")
    if not has_rows and incident.next_page_at is None:
        return None
    rows, total = latest(incident) if has_rows else ([], 0)
    context: dict[str, Any] = {
        "rows": rows,
        "total": total,
        "cut": total > len(rows),
        "all_url": all_url(incident),
        "next_page": next_page_line(incident),
        "next_page_at": incident.next_page_at,
    }
    return Panel("notifications", "admin/ops/incident/panel_notifications.html", context, order=150)


FEATURE = Feature(
    key="notifications_panel",
    panel=panel,
    presence=lambda: Exists(Notification.objects.filter(incident=OuterRef("pk"))),
)
