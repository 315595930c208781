"""Stacks > Reconcile in the admin: the latest comparison of cfadmin with Coolify and
PocketBase, its drift grouped by kind (a page of each at a time) with repair buttons per row
and per kind, and "Reconcile now". Views validate and enqueue; stacks.reconcile decides what is
offered and does the work in the worker."""

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
from cfadmin.paginators import EstimatedCountPaginator
from cfadmin.queued_once import AlreadyQueued
from stacks.choices import Repair
from stacks.models import ReconcileRun
from stacks.permissions import may_reconcile
from stacks.reconcile import (
    RepairRefused,
    comparison_running,
    is_latest,
    is_lost,
    report_groups,
    request_bulk_repair,
    request_reconcile,
    request_repair,
)


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "requested_by_repr", "stacks_checked", "drift_count", "error")
    # No date_hierarchy: it lists the distinct days of every run (a scan; on SQLite a Python
    # call per row). The date filter's choices (today, past 7 days…) need no query.
    list_filter = ("started_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> Any:
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name == "stacks_reconcilerun_changelist":
            # The list counts each run's drift in the database, never loads it.
            return ReconcileRun.with_drift_total(super().get_queryset(request))
        # A run's page reads its drift in parts (stacks.reconcile.report_groups).
        return super().get_queryset(request).defer("drift")

    @admin.display(description="drift")
    def drift_count(self, obj: ReconcileRun) -> int:
        return obj.drift_total

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
            path(
                "<path:object_id>/repair-kind/",
                view(require_POST(self.repair_kind_view)),
                name="stacks_reconcile_repair_kind",
            ),
            *super().get_urls(),
        ]

    def latest_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return self.render_run(request, ReconcileRun.latest_finished(without_drift=True))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        run = self.get_object(request, object_id)
        if run is None or not self.has_view_permission(request, run):
            raise Http404
        return self.render_run(request, run)

    def render_run(self, request: HttpRequest, run: ReconcileRun | None) -> HttpResponse:
        latest = is_latest(run)
        groups = report_groups(
            run, kind=request.GET.get("kind", ""), page=request.GET.get("page", 1)
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Reconcile: cfadmin, Coolify and PocketBase",
            "run": run,
            "drift_total": sum(group.count for group in groups),
            "groups": groups,
            "page_url": request.path,
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

    def repair_kind_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Every row of one drift kind repaired by one job ("repair all N of this kind")."""
        if not may_reconcile(request.user):
            raise PermissionDenied
        if not object_id.isdigit():
            raise Http404
        run = ReconcileRun.objects.filter(pk=object_id).first()
        drift_kind, kind = request.POST.get("drift_kind", ""), request.POST.get("repair", "")
        try:
            count = request_bulk_repair(
                run,
                drift_kind,
                kind,
                actor=request.user,
                confirmed=request.POST.get("confirm") == "yes",
                enqueue=enqueue,
            )
        except RepairRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
        except AlreadyQueued as already:
            self.message_user(request, already.message, messages.WARNING)
        else:
            self.message_user(
                request,
                f"{Repair(kind).label} queued for {count} row{'s' if count != 1 else ''}; the "
                "report refreshes when they are done.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:stacks_reconcile"))
