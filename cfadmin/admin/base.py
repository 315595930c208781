"""Admin pieces every app shares: the read-only and audited ModelAdmins, lean lists, prefilled
autocompletes and the text-box list filter."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.db import models
from django.http import HttpRequest

from cfadmin import audit
from cfadmin.list_filters import kept_params
from cfadmin.models import AuditAction


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
