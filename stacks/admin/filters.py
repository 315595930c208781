"""The stacks changelist's filters: by tenant slug, by template and its version, by PocketBase
sync. None of them asks the database for its choices (a DISTINCT over every stack would)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from cfadmin.admin import TextInputFilter
from stacks.catalog import template_names
from stacks.choices import OutboxState
from stacks.compose import all_manifests
from stacks.remote import outbox as pocketbase_outbox


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
