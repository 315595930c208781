"""Badges and links the ops admin pages share. Colours live in cfadmin/static/cfadmin/cfadmin.css
(the CSP allows no style=""); the classes come from the choices classes."""

from __future__ import annotations

from collections.abc import Iterable

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from ops.models import CheckStatus, Incident, ResponseState, duration_text


def check_badge(status: str) -> str:
    if status not in CheckStatus.values:
        return format_html('<span class="cf-check cf-check-{}">{}</span>', status, status)
    check_status = CheckStatus(status)
    return format_html('<span class="{}">{}</span>', check_status.css_class, check_status.label)


def severity_badge(incident: Incident) -> str:
    severity = incident.severity_level
    return format_html('<span class="{}">{}</span>', severity.css_class, severity.short_label)


def response_badge(incident: Incident) -> str:
    """'awaiting response — by 03:40 (in 12m)' and the like, coloured."""
    state = incident.response_state
    if not state:
        return "no target"
    state = ResponseState(state)
    label = state.label
    due = timezone.localtime(incident.response_due_at)
    if state == ResponseState.PENDING:
        label += (
            f" — by {due:%H:%M} (in {duration_text(incident.response_due_at - timezone.now())})"
        )
    elif state == ResponseState.OVERDUE:
        label += f" by {duration_text(timezone.now() - incident.response_due_at)}"
    elif incident.acknowledged_at:
        label += f" ({duration_text(incident.acknowledged_at - incident.opened_at)})"
    return format_html('<span class="{}">{}</span>', state.css_class, label)


def annotate_badges(incident: Incident) -> Incident:
    """For templates listing incidents: their severity and response badges as attributes."""
    incident.severity_badge = severity_badge(incident)
    incident.response_badge = response_badge(incident)
    return incident


def incident_links(incidents: Iterable[Incident]) -> str:
    return format_html_join(
        ", ",
        '<a href="{}">{}</a>',
        (
            (reverse("admin:ops_incident_change", args=[incident.pk]), str(incident))
            for incident in incidents
        ),
    )
