"""Stacks > Reconcile in the admin: the latest comparison of cfadmin with Coolify and
PocketBase, its drift with repair buttons, and "Reconcile now". Views validate and enqueue;
stacks.reconcile does the work in the worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from cfadmin.admin import ReadOnlyAdmin
from cfadmin.jobs import enqueue
from cfadmin.queued_once import AlreadyQueued
from stacks.choices import DriftKind, Repair
from stacks.models import ReconcileRun
from stacks.reconcile import request_reconcile

PERMISSION = "stacks.reconcile_stacks"
# A comparison unfinished after this long lost its worker.
UNFINISHED_AFTER = timedelta(minutes=10)
# Repairs that destroy something: the form asks to tick a confirmation first.
DESTRUCTIVE = {Repair.DELETE_RECORD}


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
        latest = ReconcileRun.latest_finished()
        is_latest = run is not None and latest is not None and run.pk == latest.pk
        can_repair = request.user.has_perm(PERMISSION) and is_latest
        rows = []
        for drift in run.drift if run else []:
            rows.append(
                {
                    **drift,
                    "kind_label": DriftKind(drift["kind"]).label
                    if drift["kind"] in DriftKind.values
                    else drift["kind"],
                    "repair_buttons": [
                        {
                            "kind": kind,
                            "label": Repair(kind).label,
                            "destructive": kind in DESTRUCTIVE,
                        }
                        for kind in drift["repairs"]
                        if kind in Repair.values
                    ],
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Reconcile: cfadmin, Coolify and PocketBase",
            "run": run,
            "rows": rows,
            "is_latest": is_latest,
            "lost": run is not None
            and run.finished_at is None
            and timezone.now() - run.started_at > UNFINISHED_AFTER,
            "comparing": ReconcileRun.objects.filter(
                finished_at__isnull=True, started_at__gte=timezone.now() - UNFINISHED_AFTER
            ).exists(),
            "can_run": request.user.has_perm(PERMISSION),
            "can_repair": can_repair,
        }
        return TemplateResponse(request, "admin/stacks/reconcilerun/report.html", context)

    def run_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(PERMISSION):
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
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        if not object_id.isdigit():
            raise Http404
        run = ReconcileRun.objects.filter(pk=object_id).first()
        kind, target = request.POST.get("repair", ""), request.POST.get("target", "")
        listed = run is not None and any(
            d["target"] == target and kind in d["repairs"] for d in run.drift
        )
        latest = ReconcileRun.latest_finished()
        if run is not None and (latest is None or run.pk != latest.pk):
            self.message_user(
                request,
                "A newer report exists; repair from it (it shows what is still wrong).",
                messages.ERROR,
            )
        elif not listed:
            self.message_user(
                request,
                "That repair is not in this report; reconcile again and use the new report.",
                messages.ERROR,
            )
        elif kind in DESTRUCTIVE and request.POST.get("confirm") != "yes":
            self.message_user(
                request,
                f"{Repair(kind).label}: tick “I am sure” first; nothing was changed.",
                messages.ERROR,
            )
        else:
            enqueue("stacks.tasks.repair_drift_task", kind, target, request.user.pk)
            self.message_user(
                request,
                f"{Repair(kind).label} queued for {target}; the report refreshes when it is done.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:stacks_reconcile"))
