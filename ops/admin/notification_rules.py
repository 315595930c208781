"""The notification rules in the admin: which event notifies whom, edited as data. What a rule
may name is checked by NotificationRule.clean; ops.notifications.rules applies them."""

from __future__ import annotations

from django.contrib import admin

from cfadmin.admin import AuditedModelAdmin
from ops.models.notifications import NotificationRule


@admin.register(NotificationRule)
class NotificationRuleAdmin(AuditedModelAdmin):
    list_display = ("event", "recipient", "contact", "user", "min_severity", "enabled")
    list_editable = ("enabled",)
    list_filter = ("event", "recipient", "enabled")
    list_select_related = ("contact", "user")
    fields = ("event", "recipient", "contact", "user", "min_severity", "enabled")
