"""Stacks > Reconcile in the admin: the latest comparison of cfadmin with Coolify and
PocketBase, its drift with repair buttons, and "Reconcile now". Views validate and enqueue;
stacks.reconcile decides what is offered and does the work in the worker."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from cfadmin.admin import ReadOnlyAdmin
from cfadmin.jobs import enqueue
from cfadmin.queued_once import AlreadyQueued
from stacks.choices import Repair
from stacks.models import ReconcileRun
from stacks.permissions import may_reconcile
from stacks.reconcile import (
    RepairRefused,
    comparison_running,
    is_latest,
    is_lost,
    report_rows,
    request_reconcile,
    request_repair,
)


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "requested_by_repr", "stacks_checked", "drift_count", "error")
    list_filter = ("started_at",)
    date_hierarchy = "started_at"

    @admin.display(description="drift")
    def drift_count(self, obj: ReconcileRun) -> int:
        return obj.drift_count

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("latest/", view(self.latest_view), name="stacks_reconcile"),
            path("run/", view(require_POST(self.run_view)), name="stacks_reconcile_run"),
            path(
                "<path:object_id>/repair/",
                view(require_POST(self.repair_view)),
                name="stacks_reconcile_repair",
            ),
            *super().get_urls(),
        ]

    def latest_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return self.render_run(request, ReconcileRun.latest_finished())

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        run = self.get_object(request, object_id)
        if run is None or not self.has_view_permission(request, run):
            raise Http404
        return self.render_run(request, run)

    def render_run(self, request: HttpRequest, run: ReconcileRun | None) -> HttpResponse:
        latest = is_latest(run)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Reconcile: cfadmin, Coolify and PocketBase",
            "run": run,
            "rows": report_rows(run),
            "is_latest": latest,
            "lost": run is not None and is_lost(run),
            "comparing": comparison_running(),
            "can_run": may_reconcile(request.user),
            "can_repair": may_reconcile(request.user) and latest,
        }
        return TemplateResponse(request, "admin/stacks/reconcilerun/report.html", context)

    def run_view(self, request: HttpRequest) -> HttpResponse:
        if not may_reconcile(request.user):
            raise PermissionDenied
        try:
            request_reconcile(request.user, enqueue=enqueue)
        except AlreadyQueued as already:
            self.message_user(request, already.message, messages.WARNING)
        else:
            self.message_user(
                request,
                "Reconcile queued; reload in a moment for the new report.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:stacks_reconcile"))

    def repair_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not may_reconcile(request.user):
            raise PermissionDenied
        if not object_id.isdigit():
            raise Http404
        run = ReconcileRun.objects.filter(pk=object_id).first()
        kind, target = request.POST.get("repair", ""), request.POST.get("target", "")
        try:
            request_repair(
                run,
                kind,
                target,
                actor=request.user,
                confirmed=request.POST.get("confirm") == "yes",
                enqueue=enqueue,
            )
        except RepairRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
        else:
            self.message_user(
                request,
                f"{Repair(kind).label} queued for {target}; the report refreshes when it is done.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:stacks_reconcile"))
