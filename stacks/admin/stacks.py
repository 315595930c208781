"""Stacks and operations in the admin: display, filters and inlines; operations and template
pages come from the mixins beside this module, the work from stacks.services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views.decorators.debug import sensitive_post_parameters

from cfadmin.admin import AuditedModelAdmin, ReadOnlyAdmin
from cfadmin.integrity import UniqueRaceAdminMixin
from cfadmin.paginators import EstimatedCountPaginator
from cfadmin.permissions import VIEW_AUDIT_TRAIL, may
from stacks import previews, stack_page
from stacks.admin.bulk_query import RolloutRingFilter, StackBulkQueryMixin
from stacks.admin.containment import StackContainmentMixin
from stacks.admin.deploy_page import StackDeployMixin
from stacks.admin.filters import (
    ContainmentFilter,
    PocketBaseSyncFilter,
    StackStatusFilter,
    TemplateNameFilter,
    TemplateVersionFilter,
    TenantSlugFilter,
)
from stacks.admin.inlines import (
    OperationInline,
    OperationStepInline,
    StackDomainInline,
    StackSecretInline,
    domain_link,
    domain_links,
    status_badge,
)
from stacks.admin.operations import StackOperationsMixin
from stacks.admin.templates import TemplateViewsMixin
from stacks.choices import Containment
from stacks.forms import StackForm, StackSecretFormSet
from stacks.models import Operation, Stack, StackDomain
from stacks.models.search import operation_search_q
from stacks.remote import outbox as pocketbase_outbox
from tenants.models import Tenant


def secrets_purpose(stack: Stack) -> str:
    """What values kept from the secrets inline are for (stacks.previews.keep_secrets): this
    stack's page only."""
    return f"stack-secrets:{stack.pk}"


@admin.register(Stack)
class StackAdmin(
    StackBulkQueryMixin,
    StackContainmentMixin,
    StackOperationsMixin,
    StackDeployMixin,
    TemplateViewsMixin,
    UniqueRaceAdminMixin,
    AuditedModelAdmin,
):
    form = StackForm
    actions = (
        "restart_stacks",
        "stop_stacks",
        "start_stacks",
        "redeploy_stacks",
        "rotate_secrets",
        "retry_failed",
        "isolate_stacks",
        "release_stacks",
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
        StackStatusFilter,
        TemplateNameFilter,
        TemplateVersionFilter,
        PocketBaseSyncFilter,
        ContainmentFilter,
        TenantSlugFilter,
        RolloutRingFilter,
    )
    # Searched by Stack.objects.search (get_search_results): ids and uuids exactly, names,
    # slugs and domains by their beginning, through indexes; by any part of a stack name or
    # domain only when nothing begins so. search_fields only switches the search box on.
    search_fields = ("stack_name",)
    search_help_text = (
        "Stack id, Coolify or PocketBase uuid, or the beginning of a stack or project name, "
        "tenant slug or domain; when nothing begins so, any part of a stack name or domain."
    )
    list_select_related = ("tenant",)
    list_per_page = 50
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    autocomplete_fields = ("tenant",)
    inlines = (StackDomainInline, StackSecretInline, OperationInline)
    # A stack is made by a deploy (the Deploy button), never by a bare form: every field of
    # its own is read-only here; its domains and secrets are edited in the inlines.
    identity_fields = ("tenant", "stack_name", "project_name", "template_name")
    technical_fields = (
        "coolify_project_uuid",
        "coolify_service_uuid",
        "pocketbase_id",
        "created_at",
        "updated_at",
        "deleted_at",
    )
    fieldsets = (
        (
            None,
            {
                # The status is at the top of the page, in its live summary.
                "fields": (*identity_fields, "template_version")
            },
        ),
        # Drawn after the inlines (templates/admin/stacks/stack/change_form.html).
        ("Technical ids and times", {"fields": technical_fields}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request).select_related("tenant")
        match = getattr(request, "resolver_match", None)
        if match is None or match.url_name != "stacks_stack_changelist":
            return queryset  # the page has its domains inline; actions load what they need
        live_domains = StackDomain.objects.filter(released_at__isnull=True)
        return queryset.prefetch_related(
            Prefetch("domains", queryset=live_domains, to_attr="live_domains")
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        return queryset.search(search_term), False  # no join: never duplicates

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Names are baked into remote resources by the deploy that made the stack; a pending
        # stack keeps them too, as asking for its deploy again must match them.
        return [
            *self.identity_fields,
            "template_version",
            "status",
            "status_detail",
            *self.technical_fields,
        ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # "Deploy a new stack" makes stacks (a bare record would never deploy)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_live:
            return False  # a deleted stack is a tombstone for the audit trail: look, not touch
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a stack tears down remote resources: it is an operation, never a row delete
        # (the built-in delete_selected would orphan the Coolify service).
        return False

    def get_urls(self) -> list:
        return [
            *self.template_urls(),
            *self.operation_urls(),
            *self.bulk_query_urls(),
            *super().get_urls(),
        ]

    # the secrets inline's values: error reports must not show them.
    @method_decorator(sensitive_post_parameters())
    def changeform_view(self, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().changeform_view(*args, **kwargs)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        htmx = getattr(request, "htmx", None)
        if request.method == "GET" and htmx and htmx.target == "cf-stack-live":
            # The live summary's poll: its own template, not the form and inlines around it.
            stack = self.get_object(request, unquote(object_id))
            if stack is None or not self.has_view_permission(request, stack):
                raise Http404
            context = {
                **self.admin_site.each_context(request),
                **self.stack_page_context(request, stack),
            }
            return TemplateResponse(request, "admin/stacks/stack/stack_live.html", context)
        return super().change_view(request, object_id, form_url, extra_context)

    @method_decorator(sensitive_post_parameters())
    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "templates_url": reverse("admin:stacks_templates"),
            **self._deploy_link(request),
            **self.bulk_query_context(request),
        }
        return super().changelist_view(request, extra_context)

    def _deploy_link(self, request: HttpRequest, tenant: Tenant | None = None) -> dict[str, str]:
        url = reverse("admin:stacks_stack_deploy") + (f"?tenant={tenant.slug}" if tenant else "")
        if self.has_deploy_permission(request):
            return {"deploy_url": url, "deploy_label": "Deploy a new stack"}
        if self.has_dry_run_permission(request):
            return {"deploy_url": url, "deploy_label": "Preview a deploy (dry-run)"}
        return {}

    def get_formset_kwargs(
        self, request: HttpRequest, obj: Any, inline: Any, prefix: str
    ) -> dict[str, Any]:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, StackSecretInline) and request.method == "POST" and obj.pk:
            # Values kept from the page's last failed save fill the boxes left empty.
            token = request.POST.get(f"{prefix}-kept", "")
            kept = previews.kept_secrets(request.session, secrets_purpose(obj), token)
            kwargs.update(kept=kept, kept_token=token if kept else "")
        return kwargs

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        for formset in formsets:
            if isinstance(formset, StackSecretFormSet) and formset.kept_token:
                previews.forget_secrets(request.session, formset.kept_token)  # saved: used

    def keep_typed_secrets(self, request: HttpRequest, stack: Stack, inlines: Any) -> None:
        """A save that failed (an error anywhere on the page): the secrets typed are kept,
        encrypted in the session, under a token the page carries; their rows are marked "kept".
        The values never go into the page."""
        for inline in inlines:
            formset = inline.formset
            if isinstance(formset, StackSecretFormSet) and formset.is_bound:
                kept = formset.secrets_to_keep()
                formset.kept_token = previews.keep_secrets(
                    request.session, secrets_purpose(stack), kept, replaces=formset.kept_token
                )
                formset.mark_kept(kept)

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
            inlines = context.get("inline_admin_formsets", ())
            if request.method == "POST":
                self.keep_typed_secrets(request, obj, inlines)
            context.update(self.stack_page_context(request, obj, inlines))
            context.update(self.containment_context(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def stack_page_context(
        self, request: HttpRequest, stack: Stack, inlines: Any = ()
    ) -> dict[str, Any]:
        """What the top of the stack's page shows (templates/admin/stacks/stack/stack_live.html):
        the page and its live region's poll render it from this alone."""
        operation = stack_page.latest_operation(stack)
        domains = [domain for domain in self._domains(stack, inlines) if domain.released_at is None]
        for domain in domains:
            domain.link = domain_link(domain)
        return {
            "original": stack,
            "status_badge": status_badge(stack),
            "operation": operation,
            # Refresh faster while an operation runs: its steps are what the person watches.
            "live_every": 2 if operation is not None and operation.is_in_flight else 5,
            "live_domains": domains,
            "stack_buttons": self.stack_buttons(request, stack, operation),
            "cancel_url": self.cancel_url(request, stack, operation),
            "pocketbase_sync": pocketbase_outbox.sync_state(stack),
            "stack_url": reverse("admin:stacks_stack_change", args=[stack.pk]),
            "changelist_url": reverse("admin:stacks_stack_changelist"),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "stack_panels": stack_page.panels(stack, request),
            "stack_links": self.stack_links(request, stack),
        }

    @staticmethod
    def _domains(stack: Stack, inlines: Any) -> list[StackDomain]:
        """The stack's domains: the page's domains inline has read them already (unless it
        holds what was just posted: its rows then carry the typed values)."""
        for inline in inlines:
            if inline.formset.model is StackDomain and not inline.formset.is_bound:
                return sorted(
                    (form.instance for form in inline.formset.initial_forms),
                    key=lambda domain: domain.service,
                )
        return list(stack.domains.order_by("service"))

    def stack_links(self, request: HttpRequest, stack: Stack) -> list[stack_page.Link]:
        """Where a stack's story continues: its tenant, operations and audit events (ops adds
        its checklist runs and incidents as panels)."""
        links = [
            stack_page.Link(
                f"Tenant {stack.tenant.slug}",
                reverse("admin:tenants_tenant_change", args=[stack.tenant_id]),
            ),
            stack_page.Link(
                "All operations",
                reverse("admin:stacks_operation_changelist") + f"?stack__id__exact={stack.pk}",
            ),
        ]
        if may(request.user, VIEW_AUDIT_TRAIL):
            query = urlencode({"tenant": stack.tenant.slug, "stack": stack.stack_name})
            links.append(
                stack_page.Link(
                    "Audit events",
                    reverse("admin:cfadmin_auditevent_changelist") + f"?{query}",
                )
            )
        return links

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
        if obj.is_isolated:  # contained on purpose (issue 15): said beside the status
            contained = Containment(obj.containment)
            return format_html(
                '{} <span class="{}">{}</span>',
                status_badge(obj),
                contained.badge_class,
                contained.label,
            )
        return status_badge(obj)

    @admin.display(description="domains")
    def domain_list(self, obj: Stack) -> str:
        domains = getattr(obj, "live_domains", None)
        if domains is None:
            domains = obj.domains.filter(released_at__isnull=True)
        return domain_links(domains, with_service=True)


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
    # Searched through the stack search (get_search_results) and by who asked (prefix).
    search_fields = ("requested_by_repr",)
    search_help_text = "Operation id, the stack (as in the stack search) or who asked for it."
    list_select_related = ("stack__tenant",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    inlines = (OperationStepInline,)
    readonly_fields = [f.name for f in Operation._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name == "stacks_operation_changelist":
            # The list shows none of the JSON or the error text; its page shows them all.
            queryset = queryset.defer("parameters", "result", "error", "stack__status_detail")
        return queryset

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        return queryset.filter(operation_search_q(search_term, using=queryset.db)), False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        operation = self.get_object(request, unquote(object_id))
        if operation is not None and self.has_view_permission(request, operation):
            extra_context = {
                **(extra_context or {}),
                "operation_links": self.operation_links(request, operation),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def operation_links(self, request: HttpRequest, operation: Operation) -> list[stack_page.Link]:
        """Its stack (and the stack's tenant), then what other apps add: ops, the checklist run
        the operation opened."""
        stack = operation.stack
        return [
            stack_page.Link(
                f"Stack {stack}", reverse("admin:stacks_stack_change", args=[stack.pk])
            ),
            stack_page.Link(
                f"Tenant {stack.tenant.slug}",
                reverse("admin:tenants_tenant_change", args=[stack.tenant_id]),
            ),
            *stack_page.operation_links(operation, request),
        ]
