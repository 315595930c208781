"""Admin pieces every app shares: the site's branding, the audited ModelAdmin, the audit view."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db import models
from django.http import HttpRequest

from cfadmin import audit
from cfadmin.models import AuditAction, AuditEvent

admin.site.site_header = "cfadmin"
admin.site.site_title = "cfadmin"
admin.site.index_title = "CloudFreedom Agent Platform — operator console"


def _readable(message: Any) -> str:
    """The admin's JSON change message as a sentence (field names only, never values)."""
    if isinstance(message, list):
        message = json.dumps(message)
    return LogEntry(change_message=message).get_change_message()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records (audit events, operations, health results, reports): nobody adds, edits or
    deletes them in the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditedModelAdmin(admin.ModelAdmin):
    """Writes an AuditEvent, with masked before/after values, for every add, change and delete."""

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        if change and obj.pk is not None:
            previous = type(obj)._default_manager.filter(pk=obj.pk).first()
            obj._audit_before = audit.snapshot(previous) if previous else {}
        super().save_model(request, obj, form, change)

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        audit.record(
            actor=request.user,
            action=AuditAction.CREATE,
            target=obj,
            message=_readable(message),
            changes={"after": audit.snapshot(obj)},
        )
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        if message:  # a save that changed nothing is not an event
            before = getattr(obj, "_audit_before", {})
            audit.record(
                actor=request.user,
                action=AuditAction.UPDATE,
                target=obj,
                message=_readable(message),
                changes={"fields": audit.diff(before, audit.snapshot(obj)) if before else {}},
            )
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            audit.record(
                actor=request.user,
                action=AuditAction.DELETE,
                target=obj,
                changes={"before": audit.snapshot(obj)},
            )
        return super().log_deletions(request, queryset)


class TextInputFilter(admin.SimpleListFilter):
    """A sidebar filter with a text box: stays small when there are thousands of values."""

    template = "admin/cfadmin/text_input_filter.html"
    placeholder = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # One dummy entry so the admin renders the filter; choices() never lists it.
        return [("", "")]

    def choices(self, changelist: Any) -> Any:
        everything = next(iter(super().choices(changelist)))
        kept = []
        for key, values in changelist.get_filters_params().items():
            if key == self.parameter_name:
                continue
            for value in values if isinstance(values, list) else [values]:
                kept.append((key, value))
        if changelist.query:
            kept.append(("q", changelist.query))
        everything["kept_params"] = kept
        everything["placeholder"] = self.placeholder
        yield everything


class AuditActorFilter(TextInputFilter):
    """Users and command-line actors (`cli:root`) alike: the trail keeps the actor's name."""

    title = "actor"
    parameter_name = "actor"
    placeholder = "user name or cli:user"

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(actor_repr=self.value().strip()) if self.value() else queryset


class AuditTenantFilter(TextInputFilter):
    title = "tenant"
    parameter_name = "tenant"
    placeholder = "tenant slug"

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(tenant_slug=self.value().strip()) if self.value() else queryset


class AuditStackFilter(TextInputFilter):
    title = "stack"
    parameter_name = "stack"
    placeholder = "stack name"

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(stack_name=self.value().strip()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the trail is append-only, for everyone including superusers."""

    list_display = (
        "occurred_at",
        "actor_repr",
        "action",
        "target_repr",
        "tenant_slug",
        "stack_name",
        "message",
    )
    list_filter = (
        "action",
        AuditActorFilter,
        ("target_type", admin.RelatedOnlyFieldListFilter),
        "occurred_at",
        AuditTenantFilter,
        AuditStackFilter,
    )
    search_fields = ("actor_repr", "target_repr", "tenant_slug", "stack_name", "message")
    date_hierarchy = "occurred_at"
    list_select_related = ("target_type",)
    readonly_fields = [f.name for f in AuditEvent._meta.fields]


class StaffUserAdmin(UserAdmin):
    """Members of the admin role manage staff, but cannot make anyone (themselves) superuser."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += ["is_superuser", "user_permissions"]
        return readonly

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False  # a superuser's password and flags are not the admin role's to change
        return super().has_change_permission(request, obj)


admin.site.unregister(User)
admin.site.register(User, StaffUserAdmin)
