"""Checklist runs in the admin: the run page, settling an item (tick, skip, override), and
"Run automatic checks". Rules are in ops.checklists and ops.probes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from cfadmin.admin import LeanListMixin
from cfadmin.paginators import EstimatedCountPaginator
from cfadmin.queued_once import AlreadyQueued
from ops import checklists
from ops.models import (
    ChecklistItem,
    ChecklistRun,
    EscalationContact,
    ItemState,
    MaintenanceWindow,
)
from ops.permissions import CHANGE_CHECKLISTITEM, may
from ops.probes import request_probes
from ops.procedures import MONTHLY_COOLIFY_UPDATES
from ops.run_origin import opening_operation


@admin.register(ChecklistRun)
class ChecklistRunAdmin(LeanListMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "procedure",
        "subject",
        "status",
        "progress_display",
        "started_by_repr",
        "started_at",
        "completed_at",
    )
    list_filter = ("status", "procedure__category", "procedure")
    # Every deploy and delete adds a run: counted with a cap, not twice in full.
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # ChecklistRunQuerySet.search finds runs through indexes (no join, no DISTINCT);
    # search_fields only switches the search box on.
    search_fields = ("stack__stack_name",)
    search_help_text = (
        "Run id, a word of the procedure, the stack (id, uuid, the beginning of a stack name, "
        "tenant slug or domain) or the tenant slug's beginning; when nothing is found so, any "
        "part of the note or of a stack name or domain."
    )
    list_select_related = ("procedure", "stack__tenant", "tenant", "incident")
    # Progress is counted in the query (with_progress); the list never loads items or evidence,
    # nor the long text of the rows it joins.
    list_defer = (
        "note",
        "procedure__description",
        "stack__status_detail",
        "tenant__notes",
        "incident__summary",
        "incident__resolution",
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        return (
            super().get_queryset(request).select_related(*self.list_select_related).with_progress()
        )

    def get_search_results(
        self, request: HttpRequest, queryset: Any, search_term: str
    ) -> tuple[Any, bool]:
        if not search_term.strip():
            return queryset, False
        return queryset.search(search_term), False  # no join: never duplicates

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs start from a procedure, with their items

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a run is a record of what was checked

    @admin.display(description="for")
    def subject(self, obj: ChecklistRun) -> str:
        """The run's stack or tenant, linked to its page."""
        if obj.stack_id:
            url = reverse("admin:stacks_stack_change", args=[obj.stack_id])
            return format_html('<a href="{}">{}</a>', url, obj.stack)
        if obj.tenant_id:
            url = reverse("admin:tenants_tenant_change", args=[obj.tenant_id])
            return format_html('<a href="{}">{}</a>', url, obj.tenant)
        return "—"

    @admin.display(description="progress")
    def progress_display(self, obj: ChecklistRun) -> str:
        settled, total = obj.progress
        return f"{settled}/{total}"

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/items/<int:item_id>/settle/",
                view(require_POST(self.settle_view)),
                name="ops_checklistitem_settle",
            ),
            path(
                "<path:object_id>/probe/",
                view(require_POST(self.probe_view)),
                name="ops_checklistrun_probe",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        run = self.get_object(request, object_id)
        if run is None or not self.has_view_permission(request, run):
            raise Http404
        # One item per procedure step: bounded by the procedure, so all of them, with evidence.
        items = list(run.items.select_related("step").order_by("step__position"))
        placeholders = checklists.command_placeholders(run)
        for item in items:
            item.command_text = checklists.command_for(item.step.command, run, placeholders)
        settled, total = sum(item.is_settled for item in items), len(items)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": run,
            "title": str(run),
            "run": run,
            "items": items,
            "settled": settled,
            "total": total,
            "can_tick": may(request.user, CHANGE_CHECKLISTITEM) and not run.is_completed,
            "states": ItemState,
            "contacts": EscalationContact.objects.all(),
            "opened_by": opening_operation(run),
            **self.maintenance_context(request, run),
        }
        # A live region's poll (htmx) gets only the region: no messages consumed, no page.
        template = "run_live.html" if request.htmx else "run.html"
        return TemplateResponse(request, f"admin/ops/checklistrun/{template}", context)

    def maintenance_context(self, request: HttpRequest, run: ChecklistRun) -> dict[str, Any]:
        """The monthly Coolify update's run plans its maintenance window (issue 17): the
        windows planned for it, and "Plan maintenance window" (the add form, this run set)."""
        if run.procedure.slug != MONTHLY_COOLIFY_UPDATES:
            return {}
        windows = list(run.maintenance_windows.order_by("starts_at"))
        url = ""
        if self.admin_site.is_registered(MaintenanceWindow):
            window_admin = self.admin_site.get_model_admin(MaintenanceWindow)
            if window_admin.has_add_permission(request):
                url = reverse("admin:ops_maintenancewindow_add") + f"?checklist_run={run.pk}"
        return {"maintenance_windows": windows, "plan_maintenance_url": url}

    def settle_view(self, request: HttpRequest, object_id: str, item_id: int) -> HttpResponse:
        if not may(request.user, CHANGE_CHECKLISTITEM):
            raise PermissionDenied
        item = get_object_or_404(
            ChecklistItem.objects.select_related("run", "step"), pk=item_id, run_id=object_id
        )
        try:
            checklists.settle_item(
                item,
                request.POST.get("state", ""),
                actor=request.user,
                note=request.POST.get("note", ""),
            )
        except ValidationError as error:
            self.message_user(
                request,
                f"“{item.step.text}” was not changed: " + " ".join(error.messages),
                messages.ERROR,
            )
        return HttpResponseRedirect(
            reverse("admin:ops_checklistrun_change", args=[object_id]) + f"#item-{item.pk}"
        )

    def probe_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not may(request.user, CHANGE_CHECKLISTITEM):
            raise PermissionDenied
        run = get_object_or_404(ChecklistRun, pk=object_id)
        try:
            request_probes(run, actor=request.user)
        except AlreadyQueued as already:
            self.message_user(request, already.message, messages.WARNING)
        else:
            self.message_user(
                request,
                "Automatic checks queued; their results appear here by themselves.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:ops_checklistrun_change", args=[run.pk]))
