"""The escalation table in the admin."""

from __future__ import annotations

from django.contrib import admin

from cfadmin.admin import AuditedModelAdmin
from ops.models import EscalationContact


@admin.register(EscalationContact)
class EscalationContactAdmin(AuditedModelAdmin):
    list_display = (
        "issue_type",
        "team",
        "response_target",
        "hours",
        "priority",
        "email",
        "phone",
        "chat",
    )
    search_fields = ("issue_type", "team")
    ordering = ("priority",)
