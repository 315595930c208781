"""Health check history in the admin, the operations dashboard, "Run health checks now", and
each live domain's HTTPS state with its changes."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from cfadmin.admin import ReadOnlyAdmin
from cfadmin.paginators import EstimatedCountPaginator
from cfadmin.queued_once import AlreadyQueued
from ops.admin.badges import annotate_badges, check_badge
from ops.dashboard import IN_FLIGHT_OPERATIONS_SHOWN, recent_dashboard_data
from ops.health import request_health_run
from ops.health_search import check_names, search_results
from ops.models import HealthCheckResult, HttpsDomainChange, HttpsDomainState
from ops.permissions import ADD_CHECKLISTRUN, ADD_INCIDENT, RUN_HEALTHCHECK, may


class CheckNameFilter(admin.SimpleListFilter):
    """By check; its choices come from the daily rollups, not a DISTINCT over every result."""

    title = "check"
    parameter_name = "check_name__exact"  # the links of the field filter it replaces still work

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [(name, name) for name in check_names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(check_name=value) if value else queryset


@admin.register(HealthCheckResult)
class HealthCheckResultAdmin(ReadOnlyAdmin):
    list_display = ("checked_at", "check_name", "status_badge", "message", "latency_ms")
    # No date_hierarchy: it lists the distinct days of every result (a scan of the table; on
    # SQLite a Python call per row). The date filter's choices (today, past 7 days…) need none.
    list_filter = (CheckNameFilter, "status", "checked_at")
    # A check name's start or a status (ops.health_search): a message search reads every row.
    search_fields = ("check_name",)
    search_help_text = "The start of a check's name (coolify_api), or a status (down)."
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: HealthCheckResult) -> str:
        return check_badge(obj.status)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        return search_results(queryset, search_term), False

    def get_queryset(self, request: HttpRequest) -> QuerySet[HealthCheckResult]:
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if match is not None and match.url_name == "ops_healthcheckresult_changelist":
            return queryset.defer("details")  # the list shows no details
        return queryset

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
        data = recent_dashboard_data()
        for incident in data.open_incidents:
            annotate_badges(incident)
        context = {
            **self.admin_site.each_context(request),
            **data.as_context(),
            "opts": self.opts,
            "title": "Operations dashboard",
            "operations_in_flight": data.operations_in_flight,
            "operations_finished": data.operations_finished,
            "in_flight_shown": IN_FLIGHT_OPERATIONS_SHOWN,
            "can_open_incidents": may(request.user, ADD_INCIDENT),
            "can_run": may(request.user, RUN_HEALTHCHECK),
            "can_start_runs": may(request.user, ADD_CHECKLISTRUN),
            "result_retention_days": settings.HEALTH_RESULT_RETENTION_DAYS,
            "rollup_retention_days": settings.HEALTH_ROLLUP_RETENTION_DAYS,
            "https_states_url": (
                reverse("admin:ops_httpsdomainstate_changelist")
                if settings.HEALTHCHECK_HTTPS
                else ""
            ),
        }
        # A live region's poll (htmx) gets only the region: no messages consumed, no page.
        template = "admin/ops/dashboard_live.html" if request.htmx else "admin/ops/dashboard.html"
        return TemplateResponse(request, template, context)

    def run_now_view(self, request: HttpRequest) -> HttpResponse:
        if not may(request.user, RUN_HEALTHCHECK):
            raise PermissionDenied
        try:
            request_health_run(request.user)
        except AlreadyQueued as already:
            self.message_user(request, already.message, messages.WARNING)
        else:
            self.message_user(
                request,
                "Health checks queued; the dashboard updates by itself as their results arrive.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:ops_dashboard"))


@admin.register(HttpsDomainState)
class HttpsDomainStateAdmin(ReadOnlyAdmin):
    list_display = ("domain", "status", "since", "last_checked_at", "not_after", "message")
    list_filter = ("status",)
    search_fields = ("domain",)  # a prefix of the unique index's column
    show_full_result_count = False


@admin.register(HttpsDomainChange)
class HttpsDomainChangeAdmin(ReadOnlyAdmin):
    list_display = ("changed_at", "domain", "previous_status", "status", "message")
    list_filter = ("status",)
    search_fields = ("=domain",)
    show_full_result_count = False
