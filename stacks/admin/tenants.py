"""The tenant admin with its stacks: counts by status in the list, the stacks inline, and the
runbook's "List Customer Stacks" page."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from cfadmin.paginators import EstimatedCountPaginator
from stacks.admin.inlines import TenantStackInline
from stacks.choices import StackStatus
from stacks.models import Stack
from stacks.models.search import tenant_search_q
from stacks.services import tenant_stack_listing
from tenants.admin import TenantAdmin
from tenants.models import Tenant

# The statuses the "error/stopped" column counts and links to (StackStatus.needs_attention).
ATTENTION = sorted(status.value for status in StackStatus if status.needs_attention)

admin.site.unregister(Tenant)


def _stack_count(condition: Q) -> Coalesce:
    """How many of the row's tenant's stacks meet `condition`, as a scalar subquery."""
    counted = (
        Stack.objects.filter(condition, tenant=OuterRef("pk"))
        .order_by()
        .values("tenant")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


@admin.register(Tenant)
class TenantWithStacksAdmin(TenantAdmin):
    """The tenant admin with its stacks: counts by status in the list, the stacks inline."""

    list_display = (
        "slug",
        "name",
        "status",
        "rollout_ring",
        "running_count",
        "attention_count",
        "live_count",
        "contact_email",
    )
    inlines = (TenantStackInline,)
    # Where its stacks come in a template rollout (issue 17): canary first, "last" last.
    list_filter = (*TenantAdmin.list_filter, "rollout_ring")
    fields = (
        *(f for f in TenantAdmin.fields if f not in ("notes", "created_at", "updated_at")),
        "rollout_ring",
        "notes",
        "created_at",
        "updated_at",
    )
    search_help_text = (
        "Tenant id, slug, name or contact (the beginning is enough), or a stack's id, uuid, "
        "name or domain."
    )
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def formfield_for_choice_field(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_choice_field(db_field, request, **kwargs)
        if db_field.name == "rollout_ring":
            # Left out of a post (a script, a form from before rings existed): the model's
            # default ring, as for a tenant made any other way.
            field.required = False
        return field

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        changelist = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        match = getattr(request, "resolver_match", None)
        if match is None or match.url_name != changelist:
            return queryset  # the counts are for the list; autocomplete and forms skip them
        # One small subquery per shown row (on the tenant+status index), not a GROUP BY of
        # every stack of every tenant before the page is cut; the page's COUNT drops them.
        return queryset.defer("notes").annotate(
            running_count=_stack_count(Q(status=StackStatus.RUNNING)),
            attention_count=_stack_count(Q(status__in=ATTENTION)),
            live_count=_stack_count(~Q(status=StackStatus.DELETED)),
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        return queryset.filter(tenant_search_q(search_term, using=queryset.db)), False

    @admin.display(description="running", ordering="running_count")
    def running_count(self, obj: Tenant) -> int:
        return obj.running_count

    @admin.display(description="error/stopped", ordering="attention_count")
    def attention_count(self, obj: Tenant) -> str:
        if not obj.attention_count:
            return "0"
        url = reverse("admin:stacks_stack_changelist")
        return format_html(
            '<a href="{}?tenant={}&status__in={}" class="cf-text-danger">{}</a>',
            url,
            obj.slug,
            ",".join(ATTENTION),
            obj.attention_count,
        )

    @admin.display(description="stacks", ordering="live_count")
    def live_count(self, obj: Tenant) -> str:
        url = reverse("admin:stacks_stack_changelist")
        return format_html('<a href="{}?tenant={}">{}</a>', url, obj.slug, obj.live_count)

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any
    ) -> Any:
        obj = context.get("original")
        if obj is not None:
            stack_admin = self.admin_site._registry[Stack]
            context.update(stack_admin._deploy_link(request, obj))
            context["stacks_list_url"] = reverse("admin:tenants_tenant_stacks", args=[obj.pk])
        return super().render_change_form(request, context, *args, **kwargs)

    def get_urls(self) -> list:
        return [
            path(
                "<path:object_id>/stacks/",
                self.admin_site.admin_view(self.stacks_view),
                name="tenants_tenant_stacks",
            ),
            *super().get_urls(),
        ]

    def stacks_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The runbook's "List Customer Stacks": the same rows as `provision list`."""
        tenant = self.get_object(request, object_id)
        if tenant is None or not self.has_view_permission(request, tenant):
            raise Http404
        listing = tenant_stack_listing(tenant)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": tenant,
            "title": f"Stacks of {tenant.slug}",
            "listing": listing,
            "listing_json": json.dumps(listing, indent=2),
            **self.admin_site._registry[Stack]._deploy_link(request, tenant),
        }
        return TemplateResponse(request, "admin/tenants/tenant/stacks.html", context)
