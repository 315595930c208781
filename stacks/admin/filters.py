"""The stacks changelist's filters: by status (deleted stacks hidden unless asked for), by tenant
slug, by template and its version, by PocketBase sync. None of them asks the database for its
choices (a DISTINCT over every stack would)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from cfadmin.admin import TextInputFilter
from stacks.catalog import template_names
from stacks.choices import Containment, OutboxState, StackStatus
from stacks.compose import all_manifests
from stacks.remote import outbox as pocketbase_outbox


class StackStatusFilter(admin.SimpleListFilter):
    """By status. By default the list shows live stacks only: a deleted stack is a tombstone
    kept for the audit trail, shown when its status is asked for ("Deleted", "All", or any
    other `status…` lookup in the address, e.g. the tenant list's `status__in=` links)."""

    title = "status"
    # Django's own name for the status filter: links and bookmarks made before still work.
    parameter_name = "status__exact"
    ALL = "all"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*StackStatus.choices, (self.ALL, "All, deleted included")]

    def choices(self, changelist: Any) -> Any:
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Live (not deleted)",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == self.ALL:
            return queryset
        if value:
            return queryset.filter(status=value)
        if any(name.startswith("status") for name in request.GET):
            return queryset  # another status lookup chose which statuses to show
        return queryset.exclude(status=StackStatus.DELETED)


class TenantSlugFilter(TextInputFilter):
    title = "tenant"
    parameter_name = "tenant"
    placeholder = "tenant slug, e.g. customer-123"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(tenant__slug=self.value().strip().lower())
        return queryset


class TemplateNameFilter(admin.SimpleListFilter):
    """By template: the choices are the templates cfadmin ships (stacks.catalog), not a
    DISTINCT over the stacks table."""

    title = "template name"
    parameter_name = "template_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in template_names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(template_name=self.value())
        return queryset


class TemplateVersionFilter(admin.SimpleListFilter):
    """Which stacks run an older version of their template than the one cfadmin ships now."""

    title = "template version"
    parameter_name = "template_version_is"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("current", "current"), ("outdated", "outdated")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        current = Q()
        for manifest in all_manifests():
            current |= Q(template_name=manifest.name, template_version=manifest.version)
        if self.value() == "current":
            return queryset.filter(current)
        if self.value() == "outdated":
            return queryset.exclude(current)
        return queryset


class PocketBaseSyncFilter(admin.SimpleListFilter):
    """Stacks whose PocketBase record has a change still queued (PocketBase did not answer), or
    whose newest record PocketBase refused."""

    title = "PocketBase sync"
    parameter_name = "pocketbase_sync"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(OutboxState.PENDING, "pending"), (OutboxState.REJECTED, "refused")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in (OutboxState.PENDING, OutboxState.REJECTED):
            return queryset.filter(pocketbase_outbox.stacks_with(self.value()))
        return queryset


class ContainmentFilter(admin.SimpleListFilter):
    """Contained (isolated) stacks, or the others (issue 15)."""

    title = "containment"
    parameter_name = "containment"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("contained", "Contained (isolated)"), ("not_contained", "Not contained")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "contained":
            return queryset.filter(containment=Containment.ISOLATED)
        if self.value() == "not_contained":
            return queryset.filter(containment=Containment.NONE)
        return queryset
