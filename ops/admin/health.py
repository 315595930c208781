"""Health check history in the admin, the operations dashboard, and "Run health checks now"."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from cfadmin.admin import ReadOnlyAdmin
from cfadmin.queued_once import AlreadyQueued
from ops.admin.badges import annotate_badges, check_badge
from ops.dashboard import dashboard_data
from ops.health import request_health_run
from ops.models import HealthCheckResult
from ops.permissions import ADD_CHECKLISTRUN, ADD_INCIDENT, RUN_HEALTHCHECK, may


@admin.register(HealthCheckResult)
class HealthCheckResultAdmin(ReadOnlyAdmin):
    list_display = ("checked_at", "check_name", "status_badge", "message", "latency_ms")
    list_filter = ("check_name", "status", "checked_at")
    search_fields = ("message",)
    date_hierarchy = "checked_at"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: HealthCheckResult) -> str:
        return check_badge(obj.status)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="ops_dashboard"),
            path("run/", view(require_POST(self.run_now_view)), name="ops_run_healthchecks"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = dashboard_data()
        for incident in data.open_incidents:
            annotate_badges(incident)
        context = {
            **self.admin_site.each_context(request),
            **data.as_context(),
            "opts": self.opts,
            "title": "Operations dashboard",
            "can_open_incidents": may(request.user, ADD_INCIDENT),
            "can_run": may(request.user, RUN_HEALTHCHECK),
            "can_start_runs": may(request.user, ADD_CHECKLISTRUN),
        }
        return TemplateResponse(request, "admin/ops/dashboard.html", context)

    def run_now_view(self, request: HttpRequest) -> HttpResponse:
        if not may(request.user, RUN_HEALTHCHECK):
            raise PermissionDenied
        try:
            request_health_run(request.user)
        except AlreadyQueued as already:
            self.message_user(request, already.message, messages.WARNING)
        else:
            self.message_user(
                request, "Health checks queued; results appear here in a moment.", messages.SUCCESS
            )
        return HttpResponseRedirect(reverse("admin:ops_dashboard"))
