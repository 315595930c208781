"""Incidents for the admin header's global search (cfadmin/global_search.py): by number ("12"
or "#12", the primary key) or by the beginning of the title, case ignored (the lower(title)
index of migration 0009). Not words inside a title: that would read every incident; the
incident list's own search does that."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils.timezone import localtime

from cfadmin.global_search import (
    LIMIT,
    ResultGroup,
    SearchResult,
    admin_url,
    group,
    lower_prefix_q,
    may_view,
    query_number,
)
from ops.models import Incident


def find_incidents(user: Any, query: str) -> ResultGroup | None:
    """At most LIMIT incidents matching `query`, newest first; None if `user` may not view
    incidents."""
    if not may_view(user, Incident):
        return None
    shown = Incident.objects.only("title", "severity", "status", "opened_at")  # not the texts
    incidents, condition = lower_prefix_q(shown, "title", query)
    number = query_number(query)
    if number is not None:
        condition |= Q(pk=number)
    rows = incidents.filter(condition).order_by("-opened_at", "-id")[: LIMIT + 1]
    results = [
        SearchResult(
            label=str(incident),
            url=admin_url(incident),
            detail=" · ".join(
                [
                    incident.get_severity_display(),
                    incident.get_status_display(),
                    f"opened {localtime(incident.opened_at):%Y-%m-%d %H:%M}",
                ]
            ),
        )
        for incident in rows
    ]
    return group(Incident, results, query)
