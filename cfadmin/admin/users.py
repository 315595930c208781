"""Staff users, groups and login lockouts in the admin: roles on one page, every change
audited, second factors reset and lockouts lifted by actions that are audited too."""

from __future__ import annotations

import json
from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import models
from django.db.models import Prefetch
from django.http import HttpRequest
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin  # noqa: F401  (registers it)
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin  # noqa: F401  (registers it)
from django_otp.plugins.otp_totp.models import TOTPDevice

from cfadmin import role_forms, roles
from cfadmin.admin.base import AuditedModelAdmin, LeanListMixin
from cfadmin.security import lockout, mfa, user_audit


def _changed_fields(message: Any) -> list[str]:
    entries = json.loads(message) if isinstance(message, str) and message else message or []
    return [field for entry in entries for field in entry.get("changed", {}).get("fields", [])]


def _with_role_field(fieldsets: Any, after: str) -> tuple:
    """Django's user fieldsets with "role" after the field `after`."""
    placed = []
    for name, options in fieldsets:
        fields = []
        for field in options["fields"]:
            fields.append(field)
            if field == after:
                fields.append("role")
        placed.append((name, {**options, "fields": tuple(fields)}))
    return tuple(placed)


class StaffUserAdmin(LeanListMixin, AuditedModelAdmin, UserAdmin):
    """Members of the admin role manage staff, but cannot make anyone (themselves) superuser.

    A user's role is one choice ("Role") on the add page and on the change page, set through
    cfadmin.roles; the list shows each user's roles. Every change is audited with the old and
    new groups and permissions; password changes are recorded by cfadmin.security.user_audit
    (wherever they happen), second-factor resets and unlocks by their services.
    """

    actions = ["reset_second_factor", "unlock_login"]
    form = role_forms.RoleUserChangeForm
    add_form = role_forms.RoleUserCreationForm
    add_form_template = "admin/auth/user/add_form.html"
    fieldsets = _with_role_field(UserAdmin.fieldsets, after="is_superuser")
    add_fieldsets = _with_role_field(UserAdmin.add_fieldsets, after="password2")
    # Roles beside the name: what is looked for first, and in view on a phone.
    list_display = ("username", "roles_column", "email", "first_name", "last_name", "is_staff")

    def get_list_queryset(self, queryset: Any) -> Any:
        # The roles column: the role groups of the page's users in one query.
        role_groups = Group.objects.filter(name__in=roles.ROLES)
        return (
            super()
            .get_list_queryset(queryset)
            .prefetch_related(Prefetch("groups", queryset=role_groups, to_attr="role_groups"))
        )

    @admin.display(description="Roles")
    def roles_column(self, obj: User) -> str:
        held = roles.role_names(group.name for group in obj.role_groups)
        return ", ".join(["superuser", *held] if obj.is_superuser else held) or "—"

    @admin.display(description="Role")
    def role(self, obj: User) -> str:
        """The role on a page this user may only read (a superuser's, to the admin role)."""
        held = roles.role_names(obj.groups.values_list("name", flat=True))
        return ", ".join(held) or "No role"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if Group.objects.exclude(name__in=roles.ROLES).exists():
            return fieldsets
        # Only role groups exist: the role choice is the whole story, no empty groups widget.
        return tuple(
            (name, {**options, "fields": tuple(f for f in options["fields"] if f != "groups")})
            for name, options in fieldsets
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if "role" in form.fields:  # absent where the page is read-only
            roles.assign_role(form.instance, form.chosen_role())

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
