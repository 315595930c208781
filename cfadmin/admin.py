"""Admin pieces every app shares: the site's branding, the audited ModelAdmin, the audit view."""

from __future__ import annotations

import json
from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import models
from django.http import HttpRequest
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin  # noqa: F401  (registers it)
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin  # noqa: F401  (registers it)
from django_otp.plugins.otp_totp.models import TOTPDevice

from cfadmin import audit
from cfadmin.models import AuditAction, AuditEvent
from cfadmin.security import lockout, mfa, user_audit

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

    def audit_snapshot(self, obj: models.Model) -> dict[str, Any]:
        """What the trail keeps of an object; admins of models with many-to-many fields that
        matter (a user's groups) add them here."""
        return audit.snapshot(obj)

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        if change and obj.pk is not None:
            previous = type(obj)._default_manager.filter(pk=obj.pk).first()
            obj._audit_before = self.audit_snapshot(previous) if previous else {}
        super().save_model(request, obj, form, change)

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        audit.record(
            actor=request.user,
            action=AuditAction.CREATE,
            target=obj,
            message=_readable(message),
            changes={"after": self.audit_snapshot(obj)},
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
                changes={"fields": audit.diff(before, self.audit_snapshot(obj)) if before else {}},
            )
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            audit.record(
                actor=request.user,
                action=AuditAction.DELETE,
                target=obj,
                changes={"before": self.audit_snapshot(obj)},
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
        "address",
    )
    list_filter = (
        "action",
        AuditActorFilter,
        ("target_type", admin.RelatedOnlyFieldListFilter),
        "occurred_at",
        AuditTenantFilter,
        AuditStackFilter,
    )
    search_fields = (
        "actor_repr",
        "target_repr",
        "tenant_slug",
        "stack_name",
        "message",
        "address",
    )
    date_hierarchy = "occurred_at"
    list_select_related = ("target_type",)
    readonly_fields = [f.name for f in AuditEvent._meta.fields]


def _changed_fields(message: Any) -> list[str]:
    entries = json.loads(message) if isinstance(message, str) and message else message or []
    return [field for entry in entries for field in entry.get("changed", {}).get("fields", [])]


class StaffUserAdmin(AuditedModelAdmin, UserAdmin):
    """Members of the admin role manage staff, but cannot make anyone (themselves) superuser.

    Every change is audited with the old and new groups and permissions; password changes are
    recorded by cfadmin.security.user_audit (wherever they happen), second-factor resets and
    unlocks by their services.
    """

    actions = ["reset_second_factor", "unlock_login"]

    def audit_snapshot(self, obj: models.Model) -> dict[str, Any]:
        return user_audit.user_snapshot(obj)

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        if _changed_fields(message) == ["password"]:
            # The password form: user_audit has recorded it; Django's LogEntry still gets it.
            return admin.ModelAdmin.log_change(self, request, obj, message)
        return super().log_change(request, obj, message)

    @admin.action(description="Reset second factor (they set it up again)", permissions=["change"])
    def reset_second_factor(self, request: HttpRequest, queryset: Any) -> None:
        users = [u for u in queryset if self.has_change_permission(request, u)]
        for user in users:
            mfa.reset(user, actor=request.user)
        skipped = queryset.count() - len(users)
        self.message_user(
            request,
            f"Second factor reset for {len(users)} user{'s' if len(users) != 1 else ''}"
            + (
                f"; {skipped} superuser{'s' if skipped != 1 else ''} skipped (only a superuser "
                "may reset a superuser)"
                if skipped
                else ""
            )
            + ".",
            messages.SUCCESS if not skipped else messages.WARNING,
        )

    @admin.action(description="Unlock login (clear failed logins)", permissions=["unlock"])
    def unlock_login(self, request: HttpRequest, queryset: Any) -> None:
        names = [user.get_username() for user in queryset]
        cleared = lockout.clear_user_lockouts(names, actor=request.user)
        self.message_user(
            request,
            f"Cleared {cleared} failed-login record{'s' if cleared != 1 else ''} of "
            f"{', '.join(names)}."
            if cleared
            else f"No failed logins recorded for {', '.join(names)}: nothing to unlock.",
        )

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return lockout.may_unlock(request.user)

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


class AuditedGroupAdmin(AuditedModelAdmin, GroupAdmin):
    """Roles: a change of a role's permissions is audited with the old and new lists."""

    def audit_snapshot(self, obj: models.Model) -> dict[str, Any]:
        return user_audit.group_snapshot(obj)


admin.site.unregister(Group)
admin.site.register(Group, AuditedGroupAdmin)


class LockoutAdmin(AccessAttemptAdmin):
    """django-axes' failed-login counters. The admin role (whoever manages staff users) sees
    them and lifts a lockout with "Unlock", which is audited; nobody edits or deletes them
    otherwise, so no lockout disappears without a trace."""

    actions = ["unlock"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return lockout.may_unlock(request.user) or super().has_view_permission(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return lockout.may_unlock(request.user)

    @admin.action(description="Unlock: clear these failed logins", permissions=["unlock"])
    def unlock(self, request: HttpRequest, queryset: Any) -> None:
        cleared = lockout.clear_attempts(queryset, actor=request.user)
        self.message_user(
            request, f"Cleared {cleared} failed-login record{'s' if cleared != 1 else ''}."
        )


admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, LockoutAdmin)
# cfadmin's audit trail records logins; axes' access and failure logs are off (settings.py).
admin.site.unregister(AccessLog)
admin.site.unregister(AccessFailureLog)
# The TOTP key is shown once, at enrolment; django-otp's admins would show it (QR code) again
# and delete devices without an audit event. Users > "Reset second factor" replaces them.
admin.site.unregister(TOTPDevice)
admin.site.unregister(StaticDevice)
