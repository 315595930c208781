"""Inlines of the stack, operation and tenant pages, and the stack status badge they share."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from stacks.choices import StackStatus
from stacks.forms import StackDomainFormSet, StackSecretForm
from stacks.models import Operation, OperationStep, Stack, StackDomain, StackSecret


def status_badge(stack: Stack) -> str:
    """The stack's status as a coloured badge (StackStatus.badge_class; no inline style)."""
    return format_html(
        '<span class="{}">{}</span>',
        StackStatus(stack.status).badge_class,
        stack.get_status_display(),
    )


class StackDomainInline(admin.TabularInline):
    model = StackDomain
    verbose_name = "domain"
    verbose_name_plural = "domains (a change takes effect at the next redeploy)"
    formset = StackDomainFormSet
    fields = ("service", "domain", "released_at")
    readonly_fields = ("released_at",)
    extra = 1


class StackSecretInline(admin.TabularInline):
    model = StackSecret
    form = StackSecretForm
    fields = ("key", "current_value", "value", "updated_at")
    readonly_fields = ("current_value", "updated_at")
    extra = 1
    verbose_name = "secret (env var)"
    verbose_name_plural = (
        "secrets (env vars, write-only; a change takes effect at the next redeploy or rotation)"
    )

    @admin.display(description="current value (masked)")
    def current_value(self, obj: StackSecret) -> str:
        return obj.masked_value or "—"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if not self.has_change_permission(request, obj):
            fields.remove("value")  # nothing to write: the mask says all there is to see
        return fields


class OperationInline(admin.TabularInline):
    model = Operation
    fields = (
        "operation_link",
        "kind",
        "status",
        "requested_by_repr",
        "requested_at",
        "duration_ms",
        "error",
    )
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = "operations"

    @admin.display(description="operation")
    def operation_link(self, obj: Operation) -> str:
        url = reverse("admin:stacks_operation_change", args=[obj.pk])
        return format_html('<a href="{}">#{}</a>', url, obj.pk)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OperationStepInline(admin.TabularInline):
    model = OperationStep
    fields = ("position", "name", "outcome", "detail", "started_at", "duration_ms")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


class TenantStackInline(admin.TabularInline):
    model = Stack
    fields = ("stack_name", "template_name", "status_display", "domains_display", "updated_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "stacks"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        live_domains = StackDomain.objects.filter(released_at__isnull=True)
        return (
            super()
            .get_queryset(request)
            .exclude(status=StackStatus.DELETED)
            .select_related("tenant")
            .prefetch_related(Prefetch("domains", queryset=live_domains, to_attr="live_domains"))
        )

    @admin.display(description="status")
    def status_display(self, obj: Stack) -> str:
        return status_badge(obj)

    @admin.display(description="domains")
    def domains_display(self, obj: Stack) -> str:
        return format_html_join(", ", "{}", ((d.domain,) for d in obj.live_domains))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
