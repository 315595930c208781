"""Inlines of the stack, operation and tenant pages, and the stack status badge they share."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Prefetch, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from stacks import stack_page
from stacks.choices import StackStatus
from stacks.forms import StackDomainFormSet, StackSecretForm, StackSecretFormSet
from stacks.models import Operation, OperationStep, Stack, StackDomain, StackSecret


def status_badge(stack: Stack) -> str:
    """The stack's status as a coloured badge (StackStatus.badge_class; no inline style)."""
    return format_html(
        '<span class="{}">{}</span>',
        StackStatus(stack.status).badge_class,
        stack.get_status_display(),
    )


def domain_link(domain: StackDomain, *, with_service: bool = False) -> str:
    """The domain as an https link opening in a new tab (cfadmin serves every domain over
    HTTPS); "service=domain" in lists where the service tells stacks' domains apart."""
    link = format_html(
        '<a href="https://{}/" target="_blank" rel="noopener noreferrer" class="cf-domain">{}</a>',
        domain.domain,
        domain.domain,
    )
    return format_html("{}={}", domain.service, link) if with_service else link


def domain_links(domains: Any, *, with_service: bool = False) -> str:
    return format_html_join(
        ", ", "{}", ((domain_link(d, with_service=with_service),) for d in domains)
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
    formset = StackSecretFormSet
    # The table, and the token of values kept from a failed save (StackAdmin.keep_typed_secrets).
    template = "admin/stacks/stack/secrets_inline.html"
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


class LatestInlineFormSet(BaseInlineFormSet):
    """An inline of read-only children that may be thousands (a stack's operations, a tenant's
    stacks): it shows the latest `limit` and says how many there are, with a link to them all.
    Two queries whatever the number: the rows and one COUNT on the parent's index."""

    limit = 20

    def get_queryset(self) -> QuerySet:
        if not hasattr(self, "_latest"):
            self._latest = super().get_queryset()[: self.limit]
        return self._latest

    @property
    def total_count(self) -> int:
        if not hasattr(self, "_total"):
            # Counted also when all are shown: the same queries for 3 as for 3,000.
            self._total = 0 if self.instance.pk is None else super().get_queryset().count()
        return self._total

    @property
    def is_truncated(self) -> bool:
        return self.total_count > len(self.get_queryset())


class LatestInline(admin.TabularInline):
    """A read-only inline showing the latest children and a link "all N … →" to their list
    (all_url)."""

    formset = LatestInlineFormSet
    template = "admin/stacks/latest_inline.html"
    latest_limit = 20
    extra = 0
    max_num = 0
    can_delete = False

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        formset.limit = self.latest_limit
        formset.all_url = self.all_url(obj) if obj is not None else ""
        formset.all_label = self.all_label
        return formset

    all_label = "items"

    def all_url(self, obj: Any) -> str:
        raise NotImplementedError

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OperationInline(LatestInline):
    """The stack's latest 10 operations; "all N operations →" opens the filtered list (a
    support person reads the last few; each read-only inline row costs ~1.5 ms to draw)."""

    latest_limit = 10

    model = Operation
    all_label = "operations"
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
    show_change_link = False
    verbose_name_plural = "operations (latest first)"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The inline shows none of the JSON (parameters, result): its own page does.
        return super().get_queryset(request).defer("parameters", "result")

    def all_url(self, obj: Stack) -> str:
        return reverse("admin:stacks_operation_changelist") + f"?stack__id__exact={obj.pk}"

    @admin.display(description="operation")
    def operation_link(self, obj: Operation) -> str:
        url = reverse("admin:stacks_operation_change", args=[obj.pk])
        return format_html('<a href="{}">#{}</a>', url, obj.pk)


class OperationStepInline(admin.TabularInline):
    model = OperationStep
    fields = ("position", "name", "outcome", "detail", "started_at", "duration_ms")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


class TenantStackInline(LatestInline):
    """The tenant's 20 most recently changed live stacks; "all N stacks →" opens the list."""

    model = Stack
    fields = (
        "stack_link",
        "template_name",
        "status_display",
        "domains_display",
        "open_work",
        "updated_at",
    )
    readonly_fields = fields
    show_change_link = False  # the stack's name is the link to its page
    verbose_name_plural = "stacks (most recently changed first)"
    all_label = "stacks"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        live_domains = StackDomain.objects.filter(released_at__isnull=True)
        return (
            stack_page.annotate_rows(super().get_queryset(request))
            .exclude(status=StackStatus.DELETED)
            .select_related("tenant")
            .defer("status_detail")
            .order_by("-updated_at", "-id")
            .prefetch_related(Prefetch("domains", queryset=live_domains, to_attr="live_domains"))
        )

    def all_url(self, obj: Any) -> str:
        return reverse("admin:stacks_stack_changelist") + f"?tenant={obj.slug}"

    @admin.display(description="status")
    def status_display(self, obj: Stack) -> str:
        return status_badge(obj)

    @admin.display(description="stack")
    def stack_link(self, obj: Stack) -> str:
        url = reverse("admin:stacks_stack_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.stack_name)

    @admin.display(description="domains")
    def domains_display(self, obj: Stack) -> str:
        return domain_links(obj.live_domains)

    @admin.display(description="open work")
    def open_work(self, obj: Stack) -> str:
        """What other apps note for the stack (ops: its open checklist run), read from the
        queryset's annotations (stacks.stack_page.RowNote): no query per row."""
        links = stack_page.row_links(obj)
        if not links:
            return "—"
        return format_html_join(
            ", ", '<a href="{}">{}</a>', ((link.url, link.label) for link in links)
        )
