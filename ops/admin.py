"""Ops in the admin: the dashboard, health history and outages, procedures, checklist runs
(tick, skip, override), escalation contacts. Views validate and call ops.checklists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from cfadmin import audit
from cfadmin.admin import AuditedModelAdmin, ReadOnlyAdmin
from cfadmin.jobs import enqueue
from cfadmin.queued_once import AlreadyQueued
from ops import checklists, incidents
from ops.health import CHECKS, request_health_run
from ops.models import (
    URGENT_CATEGORIES,
    ChecklistItem,
    ChecklistRun,
    CheckStatus,
    EscalationContact,
    HealthCheckResult,
    Incident,
    IncidentStatus,
    ItemState,
    Outage,
    Procedure,
    ProcedureStep,
    ResponseState,
    RunStatus,
    duration_text,
    uptime,
)
from ops.probes import request_probes
from stacks import pocketbase_outbox
from stacks.choices import OutboxState
from stacks.models import ReconcileRun, Stack
from tenants.models import Tenant

STATUS_COLOURS = {
    CheckStatus.OK: "#198754",
    CheckStatus.WARNING: "#fd7e14",
    CheckStatus.DOWN: "#dc3545",
}
SPARKLINE_POINTS = 48


def badge(status: str) -> str:
    return format_html(
        # Colours in cfadmin/static/cfadmin/cfadmin.css: the CSP allows no style="".
        '<span class="cf-check cf-check-{}">{}</span>',
        status,
        CheckStatus(status).label if status in CheckStatus.values else status,
    )


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
            "outages": [
                *Outage.objects.open().prefetch_related("incidents"),
                *Outage.objects.filter(ended_at__isnull=False).prefetch_related("incidents")[:10],
            ],
            "open_incidents": [
                annotate_badges(incident)
                for incident in Incident.objects.unresolved()
                .select_related("escalation")
                .order_by("severity", "opened_at")
            ],
            "can_open_incidents": request.user.has_perm("ops.add_incident"),
            "reconcile": ReconcileRun.latest_finished(),
            "pocketbase_sync": {
                "pending": pocketbase_outbox.stack_count(OutboxState.PENDING),
                "refused": pocketbase_outbox.stack_count(OutboxState.REJECTED),
                "url": reverse("admin:stacks_stack_changelist") + "?pocketbase_sync=",
            },
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
        try:
            request_health_run(request.user, enqueue=enqueue)
        except AlreadyQueued as already:
            self.message_user(request, already.message, messages.WARNING)
        else:
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
        "incident_links",
    )
    list_filter = ("check_name", "started_at")
    search_fields = ("check_name", "last_message")  # also what the incident form's picker searches

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("incidents")

    @admin.display(description="duration")
    def duration_display(self, obj: Outage) -> str:
        return obj.duration_text + ("" if obj.ended_at else " (ongoing)")

    @admin.display(description="incidents")
    def incident_links(self, obj: Outage) -> str:
        return incident_links(obj.incidents.all())


def incident_links(incidents_: Any) -> str:
    return format_html_join(
        ", ",
        '<a href="{}">{}</a>',
        (
            (reverse("admin:ops_incident_change", args=[incident.pk]), str(incident))
            for incident in incidents_
        ),
    )


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
        if stack is None and procedure.needs_stack:
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
            request_probes(run, actor=request.user, enqueue=enqueue)  # a new run: none queued
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
        try:
            request_probes(run, actor=request.user, enqueue=enqueue)
        except AlreadyQueued as already:
            self.message_user(request, already.message, messages.WARNING)
        else:
            self.message_user(
                request, "Automatic checks queued; reload in a moment.", messages.SUCCESS
            )
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


INCIDENT_FORM_FIELDS = ("title", "severity", "escalation", "owner", "summary")
# Button labels for moving an incident to a status (from where it is allowed).
TRANSITION_LABELS = {
    IncidentStatus.ACKNOWLEDGED: "Acknowledge",
    IncidentStatus.MITIGATED: "Mark mitigated",
    IncidentStatus.OPEN: "Reopen",
}


def response_badge(incident: Incident) -> str:
    """'awaiting response — by 03:40 (in 12m)' and the like, coloured."""
    state = incident.response_state
    if not state:
        return "no target"
    label = ResponseState(state).label
    due = timezone.localtime(incident.response_due_at)
    if state == ResponseState.PENDING:
        label += (
            f" — by {due:%H:%M} (in {duration_text(incident.response_due_at - timezone.now())})"
        )
    elif state == ResponseState.OVERDUE:
        label += f" by {duration_text(timezone.now() - incident.response_due_at)}"
    elif incident.acknowledged_at:
        label += f" ({duration_text(incident.acknowledged_at - incident.opened_at)})"
    return format_html(
        '<span class="cf-response cf-response-{}">{}</span>',  # colours: cfadmin.css
        state,
        label,
    )


def number(text: str | None) -> int:
    """A posted id, or 0 (matches nothing) when it is not a number."""
    return int(text) if text and text.isdigit() else 0


def annotate_badges(incident: Incident) -> Incident:
    incident.severity_badge = severity_badge(incident)
    incident.response_badge = response_badge(incident)
    return incident


def severity_badge(incident: Incident) -> str:
    return format_html(
        '<span class="cf-severity cf-severity-{}">{}</span>',  # colours: cfadmin.css
        incident.severity,
        incident.severity.upper(),
    )


@admin.register(Incident)
class IncidentAdmin(AuditedModelAdmin):
    list_display = (
        "__str__",
        "severity_display",
        "status",
        "escalation",
        "response_display",
        "opened_at",
        "duration_display",
        "owner",
        "affected",
    )
    list_display_links = ("__str__",)
    list_filter = ("status", "severity", "escalation", "opened_at")
    search_fields = ("title", "summary", "tenants__slug", "stacks__stack_name")
    autocomplete_fields = ("tenants", "stacks", "outages")
    fields = (*INCIDENT_FORM_FIELDS, "tenants", "stacks", "outages")
    list_select_related = ("escalation", "owner")
    date_hierarchy = "opened_at"

    # Unresolved incidents first, newest first within each group.
    ordering = (
        Case(When(status=IncidentStatus.RESOLVED, then=Value(1)), default=Value(0)).asc(),
        "-opened_at",
        "-id",
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("tenants", "stacks__tenant")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an incident is a record of what happened

    @admin.display(description="severity", ordering="severity")
    def severity_display(self, obj: Incident) -> str:
        return severity_badge(obj)

    @admin.display(description="response", ordering="response_due_at")
    def response_display(self, obj: Incident) -> str:
        return response_badge(obj)

    @admin.display(description="duration")
    def duration_display(self, obj: Incident) -> str:
        return obj.duration_text + ("" if obj.resolved_at else " (ongoing)")

    @admin.display(description="affects")
    def affected(self, obj: Incident) -> str:
        names = [str(stack) for stack in obj.stacks.all()] or [t.slug for t in obj.tenants.all()]
        return ", ".join(names[:5]) + (" …" if len(names) > 5 else "")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "owner":
            from django.contrib.auth import get_user_model

            kwargs["queryset"] = get_user_model().objects.filter(is_staff=True, is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial: dict[str, Any] = {"owner": request.user.pk}
        outage_id = request.GET.get("outage", "")
        if outage_id.isdigit():
            outage = Outage.objects.filter(pk=outage_id).first()
            if outage is not None:
                initial.update(incidents.initial_from_outage(outage))
        stack_id = request.GET.get("stack", "")
        if stack_id.isdigit():
            stack = Stack.objects.filter(pk=stack_id).select_related("tenant").first()
            if stack is not None:
                initial.update(stacks=str(stack.pk), tenants=str(stack.tenant_id))
        tenant_id = request.GET.get("tenant", "")
        if tenant_id.isdigit():
            initial["tenants"] = tenant_id
        initial.update(super().get_changeform_initial_data(request))
        initial.pop("outage", None)
        initial.pop("stack", None)
        initial.pop("tenant", None)
        return initial

    def save_model(self, request: HttpRequest, obj: Incident, form: Any, change: bool) -> None:
        if not change:
            incidents.prepare_new(obj, actor=request.user)
            super().save_model(request, obj, form, change)
            return
        previous = Incident.objects.get(pk=obj.pk)
        obj._details_before = incidents.details(previous)
        obj._audit_before = audit.snapshot(previous)
        # Only what the form edits: a status change made meanwhile (another tab) is kept.
        obj.save(update_fields=[f for f in INCIDENT_FORM_FIELDS if f in form.fields])

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        incident = form.instance
        if change:
            incidents.record_edit(
                incident,
                incident._details_before,
                actor=request.user,
                escalation_changed="escalation" in form.changed_data,
            )
        else:
            incidents.record_opened(incident, actor=request.user)

    def response_add(
        self, request: HttpRequest, obj: Incident, post_url_continue: Any = None
    ) -> Any:
        # Straight to the incident's page: its timeline and actions are where work happens.
        if "_addanother" not in request.POST and "_popup" not in request.POST:
            self.message_user(request, f"Opened incident {obj}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:ops_incident_change", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/<str:action>/do/",
                view(require_POST(self.work_view)),
                name="ops_incident_work",
            ),
            *super().get_urls(),
        ]

    def work_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """The buttons on an incident's page: status, note, escalate, start a checklist."""
        if not request.user.has_perm("ops.change_incident"):
            raise PermissionDenied
        if not object_id.isdigit():
            raise Http404
        incident = get_object_or_404(Incident, pk=object_id)
        post = request.POST
        try:
            if action == "status":
                status = post.get("status", "")
                incidents.change_status(
                    incident,
                    status,
                    actor=request.user,
                    note=post.get("note", ""),
                    resolution=post.get("resolution", ""),
                )
                done = f"Incident is now {incident.get_status_display().lower()}."
            elif action == "note":
                incidents.add_note(incident, post.get("note", ""), actor=request.user)
                done = "Note added."
            elif action == "escalate":
                contact = EscalationContact.objects.filter(pk=number(post.get("contact"))).first()
                if contact is None:
                    raise ValidationError({"contact": "Choose whom to escalate to."})
                incidents.escalate(incident, contact, actor=request.user, how=post.get("how", ""))
                done = f"Escalation to {contact.team} recorded."
            elif action == "checklist":
                if not request.user.has_perm("ops.add_checklistrun"):
                    raise PermissionDenied
                procedure = Procedure.objects.filter(
                    pk=number(post.get("procedure")), active=True
                ).first()
                if procedure is None:
                    raise ValidationError({"procedure": "Choose a procedure to run."})
                run = checklists.start_run_for_incident(procedure, incident, actor=request.user)
                if procedure.steps.exclude(probe="").exists():
                    request_probes(run, actor=request.user, enqueue=enqueue)
                return HttpResponseRedirect(reverse("admin:ops_checklistrun_change", args=[run.pk]))
            else:
                raise Http404
        except ValidationError as error:
            self.message_user(
                request, "Nothing changed: " + " ".join(error.messages), messages.ERROR
            )
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:ops_incident_change", args=[incident.pk]))

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any
    ) -> Any:
        incident = context.get("original")
        if incident is not None:
            can_work = request.user.has_perm("ops.change_incident")
            context.update(
                incident=incident,
                severity=severity_badge(incident),
                response=response_badge(incident),
                events=incident.events.all(),
                runs=incident.checklist_runs.select_related("procedure").prefetch_related("items"),
                can_work=can_work,
                can_start_runs=can_work and request.user.has_perm("ops.add_checklistrun"),
                transitions=[
                    (status, label)
                    for status, label in TRANSITION_LABELS.items()
                    if incident.can_become(status)
                ],
                can_resolve=incident.can_become(IncidentStatus.RESOLVED),
                contacts=EscalationContact.objects.all(),
                procedures=Procedure.objects.filter(active=True).order_by(
                    Case(
                        When(category__in=URGENT_CATEGORIES, then=Value(0)),
                        default=Value(1),
                    ),
                    "category",
                    "title",
                ),
            )
        return super().render_change_form(request, context, *args, **kwargs)
