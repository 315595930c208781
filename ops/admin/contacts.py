"""The escalation table in the admin, each contact with the channels it is reached on."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from cfadmin.admin import AuditedModelAdmin
from ops.admin.notifications import NotificationChannelInline
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
    inlines = (NotificationChannelInline,)

    # The channels inline's URLs hold tokens: error reports must not show them.
    @method_decorator(sensitive_post_parameters())
    def changeform_view(self, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().changeform_view(*args, **kwargs)
