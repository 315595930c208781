from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from cfadmin.admin import AuditedModelAdmin
from cfadmin.integrity import UniqueRaceAdminMixin
from tenants.models import Tenant


@admin.register(Tenant)
class TenantAdmin(UniqueRaceAdminMixin, AuditedModelAdmin):
    """Tenants on their own; stacks/admin/tenants.py extends this with each tenant's stacks.

    Two people adding the same slug at once: the second gets the form's "already exists" error
    on the slug field (UniqueRaceAdminMixin), as one adding it a moment later does.
    """

    list_display = ("slug", "name", "status", "contact_email")
    list_filter = ("status",)
    ordering = ("slug",)
    search_fields = ("slug", "name", "contact_email")
    fields = ("slug", "name", "contact_email", "status", "notes", "created_at", "updated_at")
    readonly_fields = ("created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("slug")  # resource names on Coolify are built from it
        return readonly
