"""Admin pieces every app shares: the site's branding, the audited ModelAdmin, the audit view."""

from __future__ import annotations

import json
from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Exists, OuterRef, Prefetch
from django.http import HttpRequest
from django.utils.html import format_html
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin  # noqa: F401  (registers it)
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin  # noqa: F401  (registers it)
from django_otp.plugins.otp_totp.models import TOTPDevice

from cfadmin import audit, audit_links, audit_search, internals, role_forms, roles
from cfadmin.list_filters import RecentDateFilter, kept_params
from cfadmin.models import AuditAction, AuditEvent
from cfadmin.paginators import EstimatedCountPaginator
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


class LeanListMixin:
    """A list page loads only what it shows: `list_defer` names the columns (JSON, long text,
    also of the rows `list_select_related` joins) its rows never display; `get_list_queryset`
    is where an admin adds what only its list needs. Change pages load everything."""

    list_defer: tuple[str, ...] = ()

    def get_list_queryset(self, queryset: Any) -> Any:
        """The list's rows, filters applied."""
        return queryset.defer(*self.list_defer) if self.list_defer else queryset

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> Any:
        changelist = super().get_changelist(request, **kwargs)

        class LeanChangeList(changelist):
            def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Any:
                rows = super().get_queryset(request, exclude_parameters)
                return self.model_admin.get_list_queryset(rows)

        return LeanChangeList


class PrefilledAutocompleteSelectMultiple(AutocompleteSelectMultiple):
    """An autocomplete of many objects whose selected options take their labels from objects
    the page has loaded already (`known`, e.g. the object's prefetched links) instead of a
    second query; a selection outside them (a form shown again with errors) is looked up."""

    known: tuple[models.Model, ...] = ()

    def optgroups(self, name: str, value: Any, attr: Any = None) -> Any:
        empty = self.choices.field.empty_values
        selected = {str(v) for v in value if str(v) not in empty}
        known = {str(obj.pk): obj for obj in self.known}
        if not selected <= known.keys():
            return super().optgroups(name, value, attr)
        label = self.choices.field.label_from_instance
        chosen = [obj for key, obj in known.items() if key in selected]
        options = [
            self.create_option(name, obj.pk, label(obj), selected, index)
            for index, obj in enumerate(chosen)
        ]
        return [(None, options, 0)]


def prefill_autocomplete(form: Any, field_name: str, objects: Any) -> None:
    """Give a form's PrefilledAutocompleteSelectMultiple the objects it may label from."""
    if field_name not in form.fields:  # read-only for this user: shown as text
        return
    widget = form.fields[field_name].widget
    widget = getattr(widget, "widget", widget)  # inside the admin's RelatedFieldWidgetWrapper
    if isinstance(widget, PrefilledAutocompleteSelectMultiple):
        widget.known = tuple(objects)


class TextInputFilter(admin.SimpleListFilter):
    """A sidebar filter with a text box: stays small when there are thousands of values."""

    template = "admin/cfadmin/text_input_filter.html"
    placeholder = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # One dummy entry so the admin renders the filter; choices() never lists it.
        return [("", "")]

    def choices(self, changelist: Any) -> Any:
        everything = next(iter(super().choices(changelist)))
        everything["kept_params"] = kept_params(changelist, {self.parameter_name})
        everything["placeholder"] = self.placeholder
        yield everything


# Staff users the actor filter lists; anyone else is typed in its box.
STAFF_ACTORS_SHOWN = 50


class AuditActorFilter(admin.ListFilter):
    """Active staff users as links (their events by user id) and a box for any actor name,
    matched exactly (`cli:root`, `system`, a deleted user): both answered by an index, and the
    choices come from the users table, never from a scan of the trail."""

    title = "actor"
    template = "admin/cfadmin/actor_filter.html"
    parameter_name = "actor"
    user_parameter = "actor__id__exact"
    placeholder = "user name or cli:user"

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.expected_parameters():
            if name in params:
                values = params.pop(name)
                self.used_parameters[name] = values[-1] if isinstance(values, list) else values

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name, self.user_parameter]

    def value_of(self, name: str) -> str:
        return str(self.used_parameters.get(name, "")).strip()

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        user = self.value_of(self.user_parameter)
        if user.isdigit():
            queryset = queryset.filter(actor_id=int(user))
        name = self.value_of(self.parameter_name)
        return queryset.filter(actor_repr=name) if name else queryset

    def choices(self, changelist: Any) -> Any:
        own = self.expected_parameters()
        user, name = self.value_of(self.user_parameter), self.value_of(self.parameter_name)
        yield {
            "selected": not user and not name,
            "query_string": changelist.get_query_string(remove=own),
            "display": "All",
        }
        username = User.USERNAME_FIELD
        staff = (
            User.objects.filter(is_staff=True, is_active=True)
            .order_by(username)
            .values_list("pk", username)[:STAFF_ACTORS_SHOWN]
        )
        for pk, label in staff:
            yield {
                "selected": user == str(pk),
                "query_string": changelist.get_query_string({self.user_parameter: pk}, own),
                "display": label,
            }
        yield {
            "text_box": True,
            "parameter_name": self.parameter_name,
            "value": name,
            "placeholder": self.placeholder,
            "kept_params": kept_params(changelist, set(own)),
        }


class AuditTargetTypeFilter(admin.SimpleListFilter):
    """The kinds of object the trail mentions: one EXISTS probe of the (target type, id) index
    per content type, where Django's "related only" filter reads every event."""

    title = "target type"
    parameter_name = "target_type__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        mentioned = AuditEvent.objects.filter(target_type=OuterRef("pk"))
        types = ContentType.objects.filter(Exists(mentioned)).order_by("app_label", "model")
        return [(str(content_type.pk), str(content_type)) for content_type in types]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = (self.value() or "").strip()
        return queryset.filter(target_type_id=int(value)) if value.isdigit() else queryset


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
class AuditEventAdmin(LeanListMixin, ReadOnlyAdmin):
    """Read-only: the trail is append-only, for everyone including superusers.

    Built for a trail of millions of events: every filter is answered by an index and renders
    without reading the trail (no date hierarchy, no "related only" choices, no facet counts),
    the list never loads the changes JSON, and the unfiltered list is counted from PostgreSQL's
    statistics (cfadmin.paginators) with no second, full count.
    """

    list_display = (
        "occurred_at",
        "actor_repr",
        "action",
        "target_column",
        "tenant_column",
        "stack_column",
        "message",
        "address",
    )
    list_filter = (
        "action",
        AuditActorFilter,
        AuditTargetTypeFilter,
        ("occurred_at", RecentDateFilter),
        AuditTenantFilter,
        AuditStackFilter,
    )
    # The search (cfadmin.audit_search) finds events by id, address and the beginning of an
    # actor, target, tenant slug or stack name, through indexes; by any part of those or the
    # message only when nothing begins so. search_fields only switches the search box on.
    search_fields = ("actor_repr",)
    search_help_text = audit_search.HELP_TEXT
    list_defer = ("changes", "user_agent")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def get_search_results(
        self, request: HttpRequest, queryset: Any, search_term: str
    ) -> tuple[Any, bool]:
        if not search_term.strip():
            return queryset, False
        return queryset.search(search_term), False  # no join: never duplicates

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> Any:
        changelist = super().get_changelist(request, **kwargs)
        site = self.admin_site

        class LinkedChangeList(changelist):
            """Each event of the page learns its target's URL (cfadmin.audit_links) and the
            trail's URLs filtered to its tenant and to its stack."""

            def get_results(self, request: HttpRequest) -> None:
                super().get_results(request)
                events = list(self.result_list)
                targets = audit_links.target_urls(events, request, site)
                for event in events:
                    event.target_url = targets.get(event.pk, "")
                    event.tenant_filter_url = self.get_query_string(
                        {AuditTenantFilter.parameter_name: event.tenant_slug}, ["p"]
                    )
                    event.stack_filter_url = self.get_query_string(
                        {AuditStackFilter.parameter_name: event.stack_name}, ["p"]
                    )

        return LinkedChangeList

    @admin.display(description="target", ordering="target_repr")
    def target_column(self, event: AuditEvent) -> str:
        url = getattr(event, "target_url", "")  # "" once the object is gone
        if not url:
            return event.target_repr
        return format_html('<a href="{}">{}</a>', url, event.target_repr)

    @admin.display(description="tenant", ordering="tenant_slug")
    def tenant_column(self, event: AuditEvent) -> str:
        return _filter_link(getattr(event, "tenant_filter_url", ""), event.tenant_slug, "tenant")

    @admin.display(description="stack", ordering="stack_name")
    def stack_column(self, event: AuditEvent) -> str:
        return _filter_link(getattr(event, "stack_filter_url", ""), event.stack_name, "stack")


def _filter_link(url: str, value: str, kind: str) -> str:
    """The trail filtered to this value (empty values stay empty)."""
    if not value or not url:
        return value
    return format_html('<a href="{}" title="Only events of this {}">{}</a>', url, kind, value)


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
# Django Q's pages: the admin role's "Internals", last on the index (cfadmin/internals.py).
internals.register(admin.site)
internals.list_internals_last(admin.site)
