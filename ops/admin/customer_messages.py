"""Customer message templates in the admin: what support starts a customer update from
(ops.notifications.customer_updates fills in the $placeholders)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from cfadmin.admin import AuditedModelAdmin
from ops.models.notifications import CustomerMessageTemplate
from ops.notifications import customer_updates

PLACEHOLDER_HELP = (
    "Filled in for each tenant: $incident (the incident's public title, else its title), "
    "$status, $tenant (the tenant's name), $update (what the operator writes) and "
    "$status_page (the status page's address). Write $$ for a dollar sign."
)


class CustomerMessageTemplateForm(forms.ModelForm):
    class Meta:
        model = CustomerMessageTemplate
        fields = ("name", "subject", "body", "active")
        help_texts = {"body": PLACEHOLDER_HELP, "subject": PLACEHOLDER_HELP}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        subject, body = cleaned.get("subject"), cleaned.get("body")
        if subject is not None and body is not None:
            customer_updates.check_template(subject, body)
        return cleaned


@admin.register(CustomerMessageTemplate)
class CustomerMessageTemplateAdmin(AuditedModelAdmin):
    form = CustomerMessageTemplateForm
    list_display = ("name", "subject", "active")
    list_filter = ("active",)
    search_fields = ("name", "subject")
