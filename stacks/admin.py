"""Stacks in the admin. Display, filters and inlines only; operations come from services."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_post_parameters

from cfadmin.admin import AuditedModelAdmin, ReadOnlyAdmin, TextInputFilter
from cfadmin.integrity import UniqueRaceAdminMixin
from cfadmin.validators import validate_dns_label
from stacks import (
    admin_reconcile,  # noqa: F401  (registers Stacks > Reconcile)
    pocketbase_outbox,
)
from stacks.admin_operations import StackOperationsMixin
from stacks.catalog import template_names
from stacks.choices import OutboxState, StackStatus
from stacks.compose import (
    RULES,
    SAMPLE_STACK,
    SAMPLE_TENANT,
    TemplateError,
    all_manifests,
    load_manifest,
    render_sample,
)
from stacks.forms import StackDomainFormSet, StackForm, StackSecretForm
from stacks.models import Operation, OperationStep, Stack, StackDomain, StackSecret
from stacks.services import tenant_stack_listing
from tenants.admin import TenantAdmin
from tenants.models import Tenant


def status_badge(status: str, label: str) -> str:
    # Each status's colour is in cfadmin/static/cfadmin/cfadmin.css: the CSP allows no style="".
    return format_html('<span class="cf-status cf-status-{}">{}</span>', status, label)


class TenantSlugFilter(TextInputFilter):
    title = "tenant"
    parameter_name = "tenant"
    placeholder = "tenant slug, e.g. customer-123"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(tenant__slug=self.value().strip().lower())
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


@admin.register(Stack)
class StackAdmin(StackOperationsMixin, UniqueRaceAdminMixin, AuditedModelAdmin):
    form = StackForm
    actions = (
        "restart_stacks",
        "stop_stacks",
        "start_stacks",
        "redeploy_stacks",
        "rotate_secrets",
        "retry_failed",
        "delete_stacks",
    )
    list_display = (
        "stack_name",
        "tenant_link",
        "template_display",
        "status_display",
        "domain_list",
        "updated_at",
    )
    list_filter = (
        "status",
        "template_name",
        TemplateVersionFilter,
        PocketBaseSyncFilter,
        TenantSlugFilter,
    )
    search_fields = (
        "stack_name",
        "project_name",
        "tenant__slug",
        "domains__domain",
        "coolify_project_uuid",
        "coolify_service_uuid",
        "pocketbase_id",
    )
    list_select_related = ("tenant",)
    list_per_page = 50
    autocomplete_fields = ("tenant",)
    inlines = (StackDomainInline, StackSecretInline, OperationInline)
    remote_fields = (
        "status",
        "status_detail",
        "template_version",
        "coolify_project_uuid",
        "coolify_service_uuid",
        "pocketbase_id",
        "created_at",
        "updated_at",
        "deleted_at",
    )
    fieldsets = (
        (None, {"fields": ("tenant", "project_name", "stack_name", "template_name")}),
        ("Status and remote resources (read-only)", {"fields": remote_fields}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        live_domains = StackDomain.objects.filter(released_at__isnull=True)
        return (
            super()
            .get_queryset(request)
            .select_related("tenant")
            .prefetch_related(Prefetch("domains", queryset=live_domains, to_attr="live_domains"))
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(self.remote_fields)
        if obj is not None and obj.status != StackStatus.PENDING:
            # Names are baked into remote resources once a deploy has started.
            readonly += ["tenant", "project_name", "stack_name", "template_name"]
        return readonly

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        tenant = initial.get("tenant")
        if tenant and not Tenant.objects.filter(pk=tenant).exists():
            initial.pop("tenant")
        return initial

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_live:
            return False  # a deleted stack is a tombstone for the audit trail: look, not touch
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a stack tears down remote resources: it is an operation, never a row delete
        # (the built-in delete_selected would orphan the Coolify service).
        return False

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("templates/", view(self.templates_view), name="stacks_templates"),
            path("templates/<str:name>/", view(self.template_view), name="stacks_template"),
            *self.operation_urls(),
            *super().get_urls(),
        ]

    def _template_context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "rules": RULES,
        }

    def templates_view(self, request: HttpRequest) -> HttpResponse:
        """Read-only list of the stack templates with version, env keys and audit status."""
        context = self._template_context(request, "Stack templates")
        rows = []
        for manifest in all_manifests():
            findings = render_sample(manifest).findings
            rows.append(
                {
                    "manifest": manifest,
                    "findings": findings,
                    "stacks": Stack.objects.filter(template_name=manifest.name)
                    .exclude(status=StackStatus.DELETED)
                    .count(),
                }
            )
        context["rows"] = rows
        return TemplateResponse(request, "admin/stacks/templates.html", context)

    def template_view(self, request: HttpRequest, name: str) -> HttpResponse:
        """One template: manifest, audit, and a rendered preview for sample names."""
        if name not in template_names():
            raise Http404("No such template")
        manifest = load_manifest(name)
        context = self._template_context(request, f"Template {name}")
        tenant = request.GET.get("tenant", SAMPLE_TENANT).strip()
        stack_name = request.GET.get("stack_name", SAMPLE_STACK).strip()
        errors = {}
        for field_name, value in (("tenant", tenant), ("stack_name", stack_name)):
            try:
                validate_dns_label(value)
            except ValidationError as error:
                errors[field_name] = " ".join(error.messages)
        rendered = None
        if not errors:
            try:
                rendered = render_sample(manifest, tenant=tenant, stack_name=stack_name)
            except TemplateError as exc:
                errors["template"] = str(exc)
        context.update(
            {
                "manifest": manifest,
                "manifest_data": manifest.as_dict(),
                "rendered": rendered,
                "errors": errors,
                "tenant": tenant,
                "stack_name": stack_name,
            }
        )
        return TemplateResponse(request, "admin/stacks/template_detail.html", context)

    # The rotate-secrets action posts new values to the changelist, and the change form posts
    # the secrets inline's values: error reports must not show them.
    @method_decorator(sensitive_post_parameters())
    def changeform_view(self, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().changeform_view(*args, **kwargs)

    @method_decorator(sensitive_post_parameters())
    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "templates_url": reverse("admin:stacks_templates"),
            **self._deploy_link(request),
        }
        return super().changelist_view(request, extra_context)

    def _deploy_link(self, request: HttpRequest, tenant: Tenant | None = None) -> dict[str, str]:
        url = reverse("admin:stacks_stack_deploy") + (f"?tenant={tenant.slug}" if tenant else "")
        if self.has_deploy_permission(request):
            return {"deploy_url": url, "deploy_label": "Deploy a new stack"}
        if self.has_dry_run_permission(request):
            return {"deploy_url": url, "deploy_label": "Preview a deploy (dry-run)"}
        return {}

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        if obj is not None:
            context["operation"] = obj.operations.first()
            context["stack_buttons"] = self.stack_buttons(request, obj, context["operation"])
            context["cancel_url"] = self.cancel_url(request, obj, context["operation"])
            context["pocketbase_sync"] = pocketbase_outbox.sync_state(obj)
            context["progress_url"] = reverse("admin:stacks_stack_progress", args=[obj.pk])
            context["changelist_url"] = reverse("admin:stacks_stack_changelist")
            context["action_checkbox_name"] = admin.helpers.ACTION_CHECKBOX_NAME
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="template", ordering="template_name")
    def template_display(self, obj: Stack) -> str:
        if obj.template_is_current:
            return format_html("{} <small>{}</small>", obj.template_name, obj.template_version)
        return format_html(
            '{} <small title="cfadmin now ships a newer version of this template">{} '
            "(outdated)</small>",
            obj.template_name,
            obj.template_version or "unknown",
        )

    @admin.display(description="tenant", ordering="tenant__slug")
    def tenant_link(self, obj: Stack) -> str:
        url = reverse("admin:tenants_tenant_change", args=[obj.tenant_id])
        return format_html('<a href="{}">{}</a>', url, obj.tenant.slug)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: Stack) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="domains")
    def domain_list(self, obj: Stack) -> str:
        domains = getattr(obj, "live_domains", None)
        if domains is None:
            domains = obj.domains.filter(released_at__isnull=True)
        return format_html_join(", ", "{}={}", ((d.service, d.domain) for d in domains))


class OperationStepInline(admin.TabularInline):
    model = OperationStep
    fields = ("position", "name", "outcome", "detail", "started_at", "duration_ms")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    """Read-only: an operation is a record of what happened; retry makes a new one."""

    list_display = (
        "id",
        "stack",
        "kind",
        "status",
        "current_step",
        "requested_by_repr",
        "requested_at",
        "duration_ms",
    )
    list_filter = ("status", "kind")
    search_fields = ("stack__stack_name", "stack__tenant__slug", "requested_by_repr")
    list_select_related = ("stack__tenant",)
    inlines = (OperationStepInline,)
    readonly_fields = [f.name for f in Operation._meta.fields]


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
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="domains")
    def domains_display(self, obj: Stack) -> str:
        return format_html_join(", ", "{}", ((d.domain,) for d in obj.live_domains))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.unregister(Tenant)


@admin.register(Tenant)
class TenantWithStacksAdmin(TenantAdmin):
    """The tenant admin with its stacks: counts by status in the list, the stacks inline."""

    list_display = (
        "slug",
        "name",
        "status",
        "running_count",
        "attention_count",
        "live_count",
        "contact_email",
    )
    inlines = (TenantStackInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        changelist = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        match = getattr(request, "resolver_match", None)
        if match is None or match.url_name != changelist:
            return queryset  # the counts are for the list; autocomplete and forms skip them
        return queryset.annotate(
            running_count=Count("stacks", filter=Q(stacks__status=StackStatus.RUNNING)),
            attention_count=Count(
                "stacks", filter=Q(stacks__status__in=[StackStatus.ERROR, StackStatus.STOPPED])
            ),
            live_count=Count("stacks", filter=~Q(stacks__status=StackStatus.DELETED)),
        )

    @admin.display(description="running", ordering="running_count")
    def running_count(self, obj: Tenant) -> int:
        return obj.running_count

    @admin.display(description="error/stopped", ordering="attention_count")
    def attention_count(self, obj: Tenant) -> str:
        if not obj.attention_count:
            return "0"
        url = reverse("admin:stacks_stack_changelist")
        return format_html(
            '<a href="{}?tenant={}&status__in=error,stopped" class="cf-text-danger">{}</a>',
            url,
            obj.slug,
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
            if request.user.has_perm("stacks.add_stack"):
                context["add_stack_url"] = (
                    reverse("admin:stacks_stack_add") + f"?tenant={obj.pk}"
                    f"&project_name={obj.slug}-project"
                )
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
