"""Outages in the admin: read-only, with links to the incidents about them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from cfadmin.admin import ReadOnlyAdmin
from ops.admin.badges import incident_links
from ops.maintenance.expected import expected_label
from ops.models import Outage


@admin.register(Outage)
class OutageAdmin(ReadOnlyAdmin):
    list_display = (
        "check_name",
        "started_at",
        "ended_at",
        "duration_display",
        "failures",
        "last_message",
        "expected_display",
        "incident_links",
    )
    list_select_related = ("expected_maintenance",)
    list_filter = ("check_name", "started_at")
    search_fields = ("check_name", "last_message")  # also what the incident form's picker searches

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("incidents")

    @admin.display(description="duration")
    def duration_display(self, obj: Outage) -> str:
        return obj.duration_text + ("" if obj.ended_at else " (ongoing)")

    @admin.display(description="expected")
    def expected_display(self, obj: Outage) -> str:
        """Started inside an announced maintenance window (ops.maintenance.expected)."""
        if obj.expected_maintenance is None:
            return ""
        return expected_label(obj.expected_maintenance)

    @admin.display(description="incidents")
    def incident_links(self, obj: Outage) -> str:
        return incident_links(obj.incidents.all())
