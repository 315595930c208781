"""Ops in the admin: the dashboard, health history and outages, procedures, checklist runs
(tick, skip, override), escalation contacts. Views validate and call ops.checklists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from cfadmin.admin import AuditedModelAdmin
from ops import checklists
from ops.health import CHECKS
from ops.models import (
    ChecklistItem,
    ChecklistRun,
    CheckStatus,
    EscalationContact,
    HealthCheckResult,
    ItemState,
    Outage,
    Procedure,
    ProcedureStep,
    RunStatus,
    uptime,
)
from stacks.models import Stack
from tenants.models import Tenant

STATUS_COLOURS = {
    CheckStatus.OK: "#198754",
    CheckStatus.WARNING: "#fd7e14",
    CheckStatus.DOWN: "#dc3545",
}
SPARKLINE_POINTS = 48


def badge(status: str) -> str:
    return format_html(
        '<span class="cf-check cf-check-{}" style="color:#fff;background:{};padding:1px 8px;'
        'border-radius:8px">{}</span>',
        status,
        STATUS_COLOURS.get(status, "#6c757d"),
        CheckStatus(status).label if status in CheckStatus.values else status,
    )


def enqueue(func: str, *args: Any) -> None:
    from django_q.tasks import async_task

    async_task(func, *args)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(HealthCheckResult)
class HealthCheckResultAdmin(ReadOnlyAdmin):
    list_display = ("checked_at", "check_name", "status_badge", "message", "latency_ms")
    list_filter = ("check_name", "status", "checked_at")
    search_fields = ("message",)
    date_hierarchy = "checked_at"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: HealthCheckResult) -> str:
        return badge(obj.status)

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
        now = timezone.now()
        rows = []
        for check in CHECKS:
            history = list(
                HealthCheckResult.objects.filter(check_name=check.name).order_by("-checked_at")[
                    :SPARKLINE_POINTS
                ]
            )
            latest = history[0] if history else None
            last_failure = (
                HealthCheckResult.objects.filter(check_name=check.name)
                .exclude(status=CheckStatus.OK)
                .order_by("-checked_at")
                .first()
            )
            rows.append(
                {
                    "check": check,
                    "latest": latest,
                    "last_failure": last_failure,
                    "enabled": check.enabled(),
                    "uptime": {
                        label: uptime(check.name, now - delta)
                        for label, delta in (
                            ("24 h", timedelta(days=1)),
                            ("7 d", timedelta(days=7)),
                            ("30 d", timedelta(days=30)),
                        )
                    },
                    "sparkline": sparkline(list(reversed(history))),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Operations dashboard",
            "rows": rows,
            "open_outages": Outage.objects.open(),
            "recent_outages": Outage.objects.filter(ended_at__isnull=False)[:10],
            "contacts": EscalationContact.objects.all(),
            "procedures": Procedure.objects.filter(active=True),
            "open_runs": ChecklistRun.objects.filter(status=RunStatus.OPEN).select_related(
                "procedure", "stack__tenant", "tenant"
            )[:20],
            "can_run": request.user.has_perm("ops.run_healthcheck"),
            "can_start_runs": request.user.has_perm("ops.add_checklistrun"),
        }
        return TemplateResponse(request, "admin/ops/dashboard.html", context)

    def run_now_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("ops.run_healthcheck"):
            raise PermissionDenied
        enqueue("ops.tasks.run_health_checks_task")
        self.message_user(
            request, "Health checks queued; results appear here in a moment.", messages.SUCCESS
        )
        return HttpResponseRedirect(reverse("admin:ops_dashboard"))


def sparkline(results: list[HealthCheckResult], width: int = 160, height: int = 24) -> str:
    """A small inline SVG: one bar per result, coloured by status, height by latency."""
    if not results:
        return ""
    slowest = max(r.latency_ms for r in results) or 1
    step = width / SPARKLINE_POINTS

    def bar(i: int, result: HealthCheckResult) -> tuple[Any, ...]:
        bar_height = round(max(2, result.latency_ms / slowest * height), 1)
        return (
            round(i * step, 1),
            round(height - bar_height, 1),
            round(step * 0.8, 1),
            bar_height,
            STATUS_COLOURS.get(result.status, "#6c757d"),
            result.checked_at.strftime("%Y-%m-%d %H:%M"),
            result.status,
            result.latency_ms,
        )

    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} {} {} ms</title></rect>',
        (bar(i, r) for i, r in enumerate(results)),
    )
    return format_html(
        '<svg width="{}" height="{}" role="img" aria-label="recent results">{}</svg>',
        width,
        height,
        bars,
    )


@admin.register(Outage)
class OutageAdmin(ReadOnlyAdmin):
    list_display = (
        "check_name",
        "started_at",
        "ended_at",
        "duration_display",
        "failures",
        "last_message",
    )
    list_filter = ("check_name", "started_at")

    @admin.display(description="duration")
    def duration_display(self, obj: Outage) -> str:
        return obj.duration_text + ("" if obj.ended_at else " (ongoing)")


class ProcedureStepInline(admin.TabularInline):
    model = ProcedureStep
    fields = ("position", "text", "command", "probe")
    extra = 0


@admin.register(Procedure)
class ProcedureAdmin(AuditedModelAdmin):
    list_display = ("title", "category", "version", "active", "when", "step_count")
    list_filter = ("category", "active")
    search_fields = ("title", "slug", "steps__text")
    inlines = (ProcedureStepInline,)

    @admin.display(description="steps")
    def step_count(self, obj: Procedure) -> int:
        return obj.steps.count()

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
        if not request.user.has_perm("ops.add_checklistrun"):
            raise PermissionDenied
        procedure = get_object_or_404(Procedure, pk=object_id)
        tenant = stack = None
        stack_ref = request.POST.get("stack", "").strip()
        tenant_ref = request.POST.get("tenant", "").strip()
        if stack_ref:
            tenant_slug, _, stack_name = stack_ref.partition("/")
            stack = Stack.live_named(stack_name).filter(tenant__slug=tenant_slug).first()
            if stack is None:
                self.message_user(
                    request, f"No live stack {stack_ref!r} (type tenant/stack).", messages.ERROR
                )
                return HttpResponseRedirect(
                    reverse("admin:ops_procedure_change", args=[procedure.pk])
                )
        elif tenant_ref:
            tenant = Tenant.objects.filter(slug=tenant_ref).first()
            if tenant is None:
                self.message_user(request, f"No tenant {tenant_ref!r}.", messages.ERROR)
                return HttpResponseRedirect(
                    reverse("admin:ops_procedure_change", args=[procedure.pk])
                )
        if stack is None and procedure.category == "validation":
            self.message_user(
                request,
                f"{procedure.title} checks one stack: give it as tenant/stack.",
                messages.ERROR,
            )
            return HttpResponseRedirect(
                request.META.get("HTTP_REFERER") or reverse("admin:ops_dashboard")
            )
        run = checklists.start_run(procedure, actor=request.user, tenant=tenant, stack=stack)
        if procedure.steps.exclude(probe="").exists():
            enqueue("ops.tasks.run_checklist_probes_task", run.pk)
        return HttpResponseRedirect(reverse("admin:ops_checklistrun_change", args=[run.pk]))

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any
    ) -> Any:
        obj = context.get("original")
        if obj is not None and request.user.has_perm("ops.add_checklistrun"):
            context["start_url"] = reverse("admin:ops_procedure_start", args=[obj.pk])
        return super().render_change_form(request, context, *args, **kwargs)


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
            "can_tick": request.user.has_perm("ops.change_checklistitem")
            and run.status == RunStatus.OPEN,
            "states": ItemState,
            "contacts": EscalationContact.objects.all(),
        }
        return TemplateResponse(request, "admin/ops/checklistrun/run.html", context)

    def settle_view(self, request: HttpRequest, object_id: str, item_id: int) -> HttpResponse:
        if not request.user.has_perm("ops.change_checklistitem"):
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
        if not request.user.has_perm("ops.change_checklistitem"):
            raise PermissionDenied
        run = get_object_or_404(ChecklistRun, pk=object_id)
        enqueue("ops.tasks.run_checklist_probes_task", run.pk)
        self.message_user(request, "Automatic checks queued; reload in a moment.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:ops_checklistrun_change", args=[run.pk]))


@admin.register(EscalationContact)
class EscalationContactAdmin(AuditedModelAdmin):
    list_display = (
        "issue_type",
        "team",
        "response_target",
        "hours",
        "priority",
        "email",
        "phone",
        "chat",
    )
    search_fields = ("issue_type", "team")
    ordering = ("priority",)
