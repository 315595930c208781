"""Rollouts in the admin (issue 17): the list; "New rollout" (the template, the stacks' filters
and the wave plan, previewed by ops.rollouts.plan, then started); a rollout's page, a live region
with its waves and their first stacks; Pause, Resume, Cancel and "Roll back wave N", each
confirmed on a page of its own and done by ops.rollouts.engine. The rules (wave sizes, which
action a status allows, the gates) are the engine's and the models'; this module asks and shows
(its forms and page values: ops/admin/rollout_pages.py)."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from cfadmin.admin import LeanListMixin, ReadOnlyAdmin
from ops.admin.rollout_pages import (
    ACTIONS,
    RolloutPlanForm,
    add_errors,
    preview_context,
    rollout_context,
    start_values,
)
from ops.models import Rollout, RolloutStack, RolloutStackStatus
from ops.permissions import RUN_ROLLOUT, may
from ops.rollouts import engine

_WAVE = re.compile(r"[0-9]{1,6}")


@admin.register(Rollout)
class RolloutAdmin(LeanListMixin, ReadOnlyAdmin):
    list_display = (
        "__str__",
        "status_display",
        "template_name",
        "versions",
        "progress",
        "created_by",
        "created_at",
    )
    list_filter = ("status", "template_name", "created_at")
    list_select_related = ("created_by",)
    list_defer = ("filters",)
    ordering = ("-created_at", "-id")

    def get_list_queryset(self, queryset: QuerySet) -> QuerySet:
        # n of N in one query for the page's rows (a 10,000-stack rollout counts in the DB).
        return (
            super()
            .get_list_queryset(queryset)
            .annotate(
                stacks_total=Count("stacks"),
                stacks_passed=Count("stacks", filter=Q(stacks__status=RolloutStackStatus.PASSED)),
            )
        )

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: Rollout) -> str:
        return format_html(
            '<span class="cf-ro cf-ro-{}">{}</span>', obj.status, obj.get_status_display()
        )

    @admin.display(description="versions")
    def versions(self, obj: Rollout) -> str:
        return f"{', '.join(obj.from_versions or []) or '—'} → {obj.to_version}"

    @admin.display(description="progress")
    def progress(self, obj: Rollout) -> str:
        return f"{obj.stacks_passed}/{obj.stacks_total}"

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        can_start = may(request.user, RUN_ROLLOUT)
        extra = {
            "new_rollout_url": reverse("admin:ops_rollout_new"),
            "new_rollout_label": "New rollout" if can_start else "Preview a rollout",
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("new/", view(self.new_view), name="ops_rollout_new"),
            path("<int:object_id>/act/<str:action>/", view(self.act_view), name="ops_rollout_act"),
            *super().get_urls(),
        ]

    # --- New rollout: plan, preview, start --------------------------------------------------

    def new_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        can_start = may(request.user, RUN_ROLLOUT)
        starting = request.method == "POST"
        if starting and not can_start:
            raise PermissionDenied
        data = request.POST if starting else (request.GET if "template" in request.GET else None)
        form = RolloutPlanForm(data)
        preview, start_errors = None, []
        if form.is_bound and form.is_valid():
            try:
                preview = form.build()
            except ValidationError as error:
                add_errors(form, error)
        if starting and preview is not None:
            start_errors = self.start_problems(request, preview)
            if not start_errors:
                started = self.start(request, preview)
                if isinstance(started, HttpResponse):
                    return started
                start_errors = started
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "New rollout" if can_start else "Preview a rollout",
            "form": form,
            "filter_fields": [form["template"], *(form[name] for name in form.FILTERS)],
            "wave_fields": [form[name] for name in form.WAVES],
            "plan": preview_context(preview) if preview is not None else None,
            "can_start": can_start,
            "start_values": start_values(form) if preview is not None else [],
            "start_errors": start_errors,
        }
        return TemplateResponse(request, "admin/ops/rollout/new.html", context)

    @staticmethod
    def start_problems(request: HttpRequest, preview: Any) -> list[str]:
        """Why the posted start is refused: not confirmed, or the stacks changed since."""
        problems = []
        if request.POST.get("confirm") != "yes":
            problems.append("confirm: tick the box to say you read the preview.")
        expected = request.POST.get("expected_total", "")
        if expected != str(preview.total):
            problems.append(
                f"The matching stacks changed since the preview (it showed {expected or '?'}, "
                f"now {preview.total}): read the preview below again, then start."
            )
        return problems

    def start(self, request: HttpRequest, preview: Any) -> HttpResponse | list[str]:
        """Create and start the previewed rollout: its page; refused: why (nothing saved)."""
        try:
            with transaction.atomic():
                rollout = engine.create(preview, actor=request.user)
                engine.start(rollout, actor=request.user)
        except ValidationError as error:
            return ["Nothing started: " + " ".join(error.messages)]
        self.message_user(
            request,
            f"Rollout {rollout} started: its first wave is queued; this page follows it.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:ops_rollout_change", args=[rollout.pk]))

    # --- A rollout's page and its actions ---------------------------------------------------

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        rollout = self.get_object(request, object_id)
        if rollout is None:
            raise Http404("No such rollout")
        if not self.has_view_permission(request, rollout):
            raise PermissionDenied
        context = rollout_context(request, rollout)
        if request.htmx:  # a live region's poll: only the region, no messages used up
            return TemplateResponse(request, "admin/ops/rollout/live.html", context)
        context.update(
            **self.admin_site.each_context(request),
            opts=self.opts,
            title=f"Rollout {rollout}",
            original=rollout,
        )
        return TemplateResponse(request, "admin/ops/rollout/detail.html", context)

    def act_view(self, request: HttpRequest, object_id: int, action: str) -> HttpResponse:
        """GET: the confirmation page; POST: the engine's call, its outcome as a message."""
        if not may(request.user, RUN_ROLLOUT):
            raise PermissionDenied
        found = ACTIONS.get(action)
        if found is None:
            raise Http404("No such action")
        rollout = get_object_or_404(Rollout, pk=object_id)
        page = reverse("admin:ops_rollout_change", args=[rollout.pk])
        wave, wave_number = None, None
        if found.per_wave:
            raw = request.POST.get("wave") or request.GET.get("wave") or ""
            # ASCII digits, bounded: "²" or 20 digits would be a 500 in the query, not "no wave".
            wave = rollout.waves.filter(number=raw).first() if _WAVE.fullmatch(raw) else None
            if wave is None:
                message = f"wave: there is no wave “{raw}” in this rollout."
                self.message_user(request, message, messages.ERROR)
                return HttpResponseRedirect(page)
            wave_number = wave.number
        label = found.label.format(wave=wave_number)
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": label,
                "rollout": rollout,
                "rollout_url": page,
                "wave_number": wave_number,
                "action": {
                    "label": label,
                    "question": found.question.format(rollout=rollout, wave=wave_number),
                    "consequence": found.consequence,
                    "danger": found.danger,
                },
            }
            return TemplateResponse(request, "admin/ops/rollout/confirm.html", context)
        try:
            with transaction.atomic():
                found.run(rollout, wave, request.user)
        except ValidationError as error:
            self.message_user(
                request, f"{label}: nothing changed — " + " ".join(error.messages), messages.ERROR
            )
        else:
            rollout.refresh_from_db()
            now = rollout.get_status_display().lower()
            self.message_user(request, f"{label}: done; the rollout is {now}.", messages.SUCCESS)
        return HttpResponseRedirect(page)


@admin.register(RolloutStack)
class RolloutStackAdmin(LeanListMixin, ReadOnlyAdmin):
    """Every stack of a rollout (the rollout's page links here filtered to one wave)."""

    list_display = (
        "stack",
        "rollout",
        "wave_number",
        "from_version",
        "status",
        "operation",
        "error",
    )
    list_filter = ("status",)
    list_select_related = ("stack__tenant", "rollout", "wave", "operation")
    search_fields = ("stack__stack_name", "stack__tenant__slug")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False  # reached from a rollout's page, not the menu

    @admin.display(description="wave", ordering="wave__number")
    def wave_number(self, obj: RolloutStack) -> int:
        return obj.wave.number
