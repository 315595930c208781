"""Runbook procedures in the admin, with their steps, and "Start a run" (ops.checklists)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from cfadmin.admin import AuditedModelAdmin, LeanListMixin
from ops import checklists
from ops.models import Procedure, ProcedureStep
from ops.permissions import ADD_CHECKLISTRUN, may


class ProcedureStepInline(admin.TabularInline):
    model = ProcedureStep
    fields = ("position", "text", "command", "probe")
    extra = 0


@admin.register(Procedure)
class ProcedureAdmin(LeanListMixin, AuditedModelAdmin):
    list_display = ("title", "category", "version", "active", "when", "step_count")
    list_filter = ("category", "active")
    search_fields = ("title", "slug", "steps__text")
    inlines = (ProcedureStepInline,)
    list_defer = ("description",)

    def get_queryset(self, request: HttpRequest) -> Any:
        # Steps counted in the list's query, not one query per row.
        return super().get_queryset(request).annotate(step_total=Count("steps"))

    @admin.display(description="steps", ordering="step_total")
    def step_count(self, obj: Procedure) -> int:
        return obj.step_total

    def get_urls(self) -> list:
        return [
            path(
                "<path:object_id>/start/",
                self.admin_site.admin_view(require_POST(self.start_view)),
                name="ops_procedure_start",
            ),
            *super().get_urls(),
        ]

    def start_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Start a checklist run of this procedure, optionally for a tenant or a stack."""
        if not may(request.user, ADD_CHECKLISTRUN):
            raise PermissionDenied
        procedure = get_object_or_404(Procedure, pk=object_id)
        try:
            run = checklists.start_checklist(
                procedure,
                actor=request.user,
                stack_ref=request.POST.get("stack", ""),
                tenant_ref=request.POST.get("tenant", ""),
            )
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            if "procedure" in getattr(error, "error_dict", {}):  # no subject: back to the form
                back = request.META.get("HTTP_REFERER") or reverse("admin:ops_dashboard")
            else:  # a subject that does not exist: the procedure's page
                back = reverse("admin:ops_procedure_change", args=[procedure.pk])
            return HttpResponseRedirect(back)
        return HttpResponseRedirect(reverse("admin:ops_checklistrun_change", args=[run.pk]))

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any
    ) -> Any:
        obj = context.get("original")
        if obj is not None and may(request.user, ADD_CHECKLISTRUN):
            context["start_url"] = reverse("admin:ops_procedure_start", args=[obj.pk])
        return super().render_change_form(request, context, *args, **kwargs)
