"""Maintenance windows in the admin: planned (and announced on the status page at once unless
"announce" is unticked), listed upcoming first, announced later or cancelled by an action; a
window's page shows its automated checks (issue 17: versions, backup, stacks that stopped, the
24h summary) with "Run before-checks" / "Run after-checks". The rules are in
ops.status_page.maintenance and ops.maintenance."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, DateTimeField, F, IntegerField, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from cfadmin.admin import AuditedModelAdmin
from ops.maintenance import checks, jobs
from ops.maintenance.summary import summary_due_at
from ops.models import MaintenanceWindow
from ops.status_page import maintenance
from stacks.models import Stack

# Stopped stacks named (with links) on a window's page; the count says how many in all.
STOPPED_SHOWN = 200


class MaintenanceWindowForm(forms.ModelForm):
    announce = forms.BooleanField(
        label="Announce on the status page now",
        required=False,
        initial=True,
        help_text="Customers see the window (its title, message and times) on the public status "
        "page from now. Untick to plan it quietly and announce it later (list action).",
    )

    class Meta:
        model = MaintenanceWindow
        fields = ("title", "public_message", "starts_at", "ends_at", "owner", "checklist_run")
        help_texts = {
            "title": "Shown on the status page, e.g. “Coolify update”.",
            "starts_at": "In the console's time zone (TIME_ZONE).",
            "ends_at": "In the console's time zone (TIME_ZONE).",
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            maintenance.check_window(
                data.get("starts_at"),
                data.get("ends_at"),
                announce_now=bool(data.get("announce")) and self.instance.pk is None,
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                for message in errors:
                    self.add_error(field, message)
        return data


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(AuditedModelAdmin):
    form = MaintenanceWindowForm
    list_display = ("title", "starts_at", "ends_at", "state", "owner", "announced_at")
    list_select_related = ("owner",)
    search_fields = ("title",)
    raw_id_fields = ("checklist_run",)
    readonly_fields = ("announced_at", "cancelled_at", "created_at", "automated_checks")
    actions = ("announce_selected", "cancel_selected")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = ["title", "public_message", "starts_at", "ends_at", "owner", "checklist_run"]
        if obj is None:
            return [*fields, "announce"]
        return [*fields, "announced_at", "cancelled_at", "created_at", "automated_checks"]

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(require_POST(self.run_checks_view))
        return [
            path(
                "<path:object_id>/checks/<str:kind>/",
                view,
                name="ops_maintenancewindow_run_checks",
            ),
            *super().get_urls(),
        ]

    def run_checks_view(self, request: HttpRequest, object_id: str, kind: str) -> HttpResponse:
        """ "Run before-checks" / "Run after-checks": queued, run by a worker."""
        window = self.get_object(request, object_id)
        if window is None or kind not in jobs.KINDS:
            raise Http404
        if not self.has_change_permission(request, window):
            raise PermissionDenied
        jobs.request_checks(window, kind, actor=request.user)
        self.message_user(
            request,
            f"The {kind}-checks are queued; their results appear on this page when done.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:ops_maintenancewindow_change", args=[window.pk]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        window = self.get_object(request, object_id)
        if window is not None and self.has_change_permission(request, window):
            extra_context = {
                **(extra_context or {}),
                "check_buttons": [
                    (
                        kind,
                        reverse("admin:ops_maintenancewindow_run_checks", args=[window.pk, kind]),
                    )
                    for kind in jobs.KINDS
                ],
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="automated checks")
    def automated_checks(self, window: MaintenanceWindow) -> SafeString:
        """Before/after: versions, backup, stacks that stopped (linked); the 24h summary."""
        shown = checks.stopped_ids(window)[:STOPPED_SHOWN]
        names = Stack.objects.select_related("tenant").in_bulk(shown)
        stopped = [
            {**row, "stack_obj": names.get(int(row["stack"]))}
            for row in window.stopped_stacks[:STOPPED_SHOWN]
        ]
        return render_to_string(
            "admin/ops/maintenancewindow/checks.html",
            {
                "window": window,
                "stopped": stopped,
                "stopped_more": (window.stopped_count or 0) - len(stopped),
                "running_before": sum(
                    checks.counts_as_running(status) for status in window.stacks_before.values()
                ),
                "summary_due_at": summary_due_at(window),
                "before_lead_minutes": int(jobs.before_lead().total_seconds() // 60),
                "summary_checks": sorted(window.health_summary.get("checks", {}).items()),
            },
        )

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        """Upcoming and current windows first, soonest first; then past ones, newest first."""
        now = timezone.now()
        over = Case(
            When(ends_at__lte=now, then=Value(1)), default=Value(0), output_field=IntegerField()
        )
        upcoming_start = Case(
            When(ends_at__gt=now, then=F("starts_at")), default=None, output_field=DateTimeField()
        )
        return [over.asc(), upcoming_start.asc(), F("starts_at").desc(), F("id").desc()]

    @admin.display(description="state")
    def state(self, window: MaintenanceWindow) -> str:
        now = timezone.now()
        if window.cancelled_at is not None:
            return "Cancelled"
        if window.ends_at <= now:
            return "Over"
        label = "On now" if window.is_on(now) else "Upcoming"
        if window.announced_at is None:
            return format_html("{} <small>(not announced)</small>", label)
        return format_html("{} <small>(on the status page)</small>", label)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            maintenance.edited(obj)
            return
        maintenance.plan(
            obj, actor=request.user, announce_now=form.cleaned_data.get("announce", False)
        )

    @admin.action(
        description="Announce selected windows on the status page", permissions=["change"]
    )
    def announce_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        announced = skipped = 0
        for window in queryset:
            try:
                done = maintenance.announce(window, actor=request.user)
            except ValidationError:
                done = False
            announced += done
            skipped += not done
        self.message_user(
            request,
            f"Announced {announced} window(s); {skipped} skipped (announced, cancelled or over).",
            messages.SUCCESS if announced else messages.WARNING,
        )

    @admin.action(description="Cancel selected windows", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        cancelled = sum(maintenance.cancel(window, actor=request.user) for window in queryset)
        self.message_user(
            request,
            f"Cancelled {cancelled} window(s); they are off the status page.",
            messages.SUCCESS,
        )
