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
from django.views.decorators.http import require_POST

from cfadmin.queued_once import AlreadyQueued
from ops import checklists
from ops.models import ChecklistItem, ChecklistRun, EscalationContact, ItemState
from ops.permissions import CHANGE_CHECKLISTITEM, may
from ops.probes import request_probes


@admin.register(ChecklistRun)
class ChecklistRunAdmin(admin.ModelAdmin):
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
    search_fields = ("procedure__title", "stack__stack_name", "tenant__slug", "note")
    list_select_related = ("procedure", "stack__tenant", "tenant")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs start from a procedure, with their items

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a run is a record of what was checked

    @admin.display(description="for")
    def subject(self, obj: ChecklistRun) -> str:
        return str(obj.stack or obj.tenant or "—")

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
        items = list(run.items.select_related("step").order_by("step__position"))
        for item in items:
            item.command_text = checklists.command_for(item.step.command, run)
        settled, total = run.progress
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
        }
        return TemplateResponse(request, "admin/ops/checklistrun/run.html", context)

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
                request, "Automatic checks queued; reload in a moment.", messages.SUCCESS
            )
        return HttpResponseRedirect(reverse("admin:ops_checklistrun_change", args=[run.pk]))
