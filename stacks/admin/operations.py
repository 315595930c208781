"""The stack admin's operations: deploy (dry-run first), restart, stop, start, redeploy, rotate
secrets, retry, cancel and delete. Each validates, queues through stacks.services and reports;
nothing remote runs in a request. Who may do what is stacks.permissions'."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from stacks import permissions, previews, services
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.compose import load_manifest
from stacks.forms import CancelOperationForm, RotateSecretsForm
from stacks.models import Operation, Stack
from stacks.services import recovery

# What the stack page offers: action name, label, permission, kinds the stack must accept.
STACK_BUTTONS = [
    ("restart_stacks", "Restart…", "restart", OperationKind.RESTART),
    ("stop_stacks", "Stop…", "stop", OperationKind.STOP),
    ("start_stacks", "Start", "start", OperationKind.START),
    ("redeploy_stacks", "Redeploy…", "redeploy", OperationKind.REDEPLOY),
    ("rotate_secrets", "Rotate secrets…", "rotate", OperationKind.ROTATE_SECRETS),
    ("delete_stacks", "Delete…", "destroy", OperationKind.DELETE),
]


KEPT = "redeploy_onto_kept_volumes"  # offered on a deleted stack's page only


def _posted_redeploy(request: HttpRequest) -> bool:
    return request.method == "POST" and request.POST.get("action") == KEPT


def _skip_reason(stack: Stack, reason: str) -> str:
    """One skipped stack for the report: named once, no doubled full stop."""
    reason = reason.rstrip(".")
    return reason if reason.startswith(str(stack)) else f"{stack} — {reason}"


class StackOperationsMixin:
    """Mixed into StackAdmin (a ModelAdmin)."""

    # --- permissions (named by @admin.action(permissions=[...])) -----------------------------

    def has_deploy_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.DEPLOY)

    def has_dry_run_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.DRY_RUN)

    def has_restart_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.RESTART)

    def has_stop_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.STOP)

    def has_start_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.START)

    def has_redeploy_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.REDEPLOY)

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.ROTATE_SECRETS)

    def has_destroy_permission(self, request: HttpRequest) -> bool:
        return permissions.may(request.user, permissions.DELETE)

    # --- reporting ----------------------------------------------------------------------------

    def _report(
        self,
        request: HttpRequest,
        label: str,
        queued: list[Operation],
        skipped: list[tuple[Stack, str]],
    ) -> None:
        count = len(queued)
        plural = "" if count == 1 else "s"
        text = f"Queued {count} {label}{plural}" if queued else f"No {label} queued"
        if skipped:
            text += f"; skipped {len(skipped)}: " + "; ".join(
                _skip_reason(stack, reason) for stack, reason in skipped
            )
        level = (
            messages.SUCCESS
            if queued and not skipped
            else (messages.WARNING if queued else messages.ERROR)
        )
        if not queued:
            self.message_user(request, text + ".", level)
            return
        self.message_user(
            request,
            format_html(
                '{} <a href="{}?status__in=queued,running">Follow {} in Operations</a>.',
                text + ".",
                reverse("admin:stacks_operation_changelist"),
                "it" if count == 1 else "them",
            ),
            level,
        )

    def _queue(self, request: HttpRequest, queryset: QuerySet, kind: str, label: str) -> None:
        with transaction.atomic():
            queued, skipped = services.request_operations(
                list(queryset.select_related("tenant")), kind, actor=request.user
            )
        self._report(request, label, queued, skipped)

    # --- simple actions -----------------------------------------------------------------------

    @admin.action(description="Start selected stacks", permissions=["start"])
    def start_stacks(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._queue(request, queryset, OperationKind.START, "start")

    @admin.action(
        description="Retry the failed operation of selected stacks", permissions=["deploy"]
    )
    def retry_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        queued: list[Operation] = []
        skipped: list[tuple[Stack, str]] = []
        with transaction.atomic():
            for stack in queryset.select_related("tenant"):
                if not permissions.may_retry(request.user, stack.operations.first()):
                    skipped.append((stack, "retrying a delete needs the admin role"))
                    continue
                try:
                    queued.append(services.retry_operation(stack, actor=request.user))
                except services.OperationRefused as refused:
                    skipped.append((stack, refused.message))
        self._report(request, "retry", queued, skipped)

    # --- confirmed actions --------------------------------------------------------------------

    def _confirmation_context(
        self, request: HttpRequest, action: str, title: str, stacks: list[Stack]
    ) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "action": action,
            "stacks": stacks,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "return_to": request.POST.get("_return_to", ""),
        }

    def _confirm_then_queue(
        self, request: HttpRequest, queryset: QuerySet, kind: OperationKind, action: str
    ) -> Any:
        """A page listing what the operation touches (and which stacks it would skip) first;
        "Yes" posts the same action back with post=yes and queues it."""
        label = kind.label.lower()
        if request.POST.get("post") == "yes":
            self._queue(request, queryset, kind, label)
            return None
        stacks = list(queryset.select_related("tenant").prefetch_related("domains"))
        context = self._confirmation_context(request, action, f"{kind.label} stacks?", stacks)
        context["rows"] = [
            {
                "stack": stack,
                "domains": [d.domain for d in stack.domains.all() if d.released_at is None],
                "accepted": stack.accepts(kind),
            }
            for stack in stacks
        ]
        context["accepted_count"] = sum(row["accepted"] for row in context["rows"])
        return TemplateResponse(request, f"admin/stacks/stack/confirm_{kind.value}.html", context)

    @admin.action(description="Restart selected stacks…", permissions=["restart"])
    def restart_stacks(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return self._confirm_then_queue(request, queryset, OperationKind.RESTART, "restart_stacks")

    @admin.action(description="Stop selected stacks…", permissions=["stop"])
    def stop_stacks(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return self._confirm_then_queue(request, queryset, OperationKind.STOP, "stop_stacks")

    @admin.action(
        description="Redeploy selected stacks (push the current template)…",
        permissions=["redeploy"],
    )
    def redeploy_stacks(self, request: HttpRequest, queryset: QuerySet) -> Any:
        if request.POST.get("post") == "yes":
            self._queue(request, queryset, OperationKind.REDEPLOY, "redeploy")
            return None
        stacks = list(queryset.select_related("tenant"))
        context = self._confirmation_context(request, "redeploy_stacks", "Redeploy stacks?", stacks)
        context["rows"] = [
            {
                "stack": stack,
                "from_version": stack.template_version,
                "to_version": load_manifest(stack.template_name).version,
            }
            for stack in stacks
        ]
        return TemplateResponse(request, "admin/stacks/stack/confirm_redeploy.html", context)

    @admin.action(description="Rotate secrets of a stack…", permissions=["rotate"])
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet) -> Any:
        stacks = list(queryset.select_related("tenant")[:2])
        if len(stacks) != 1:
            self.message_user(
                request,
                "Rotate secrets works on one stack at a time: select exactly one.",
                messages.ERROR,
            )
            return None
        stack = stacks[0]
        bound = request.POST.get("post") == "yes"
        purpose = f"rotate:{stack.pk}"
        kept_token = request.POST.get("kept", "") if bound else ""
        form = RotateSecretsForm(
            request.POST if bound else None,
            stack=stack,
            kept=previews.kept_secrets(request.session, purpose, kept_token),
        )
        if form.is_bound and form.is_valid():
            try:
                with transaction.atomic():
                    operation = services.rotate_stack_secrets(
                        stack, form.new_values(), actor=request.user
                    )
            except services.OperationRefused as refused:
                form.add_error(None, f"Nothing was rotated: {refused.message}")
            else:
                previews.forget_secrets(request.session, kept_token)
                self._report(request, "rotation", [operation], [])
                return None
        if form.is_bound:
            # Shown again: what was typed is kept (encrypted, server-side), never put back.
            kept = form.secrets_to_keep()
            kept_token = previews.keep_secrets(request.session, purpose, kept, replaces=kept_token)
            form.mark_kept(kept)
        context = self._confirmation_context(
            request, "rotate_secrets", f"Rotate secrets of {stack}", stacks
        )
        context["form"] = form
        context["kept_token"] = kept_token
        return TemplateResponse(request, "admin/stacks/stack/rotate_secrets.html", context)

    @admin.action(
        description="Delete selected stacks (containers, volumes, data)…", permissions=["destroy"]
    )
    def delete_stacks(self, request: HttpRequest, queryset: QuerySet) -> Any:
        stacks = list(queryset.select_related("tenant").prefetch_related("domains"))
        confirmed = request.POST.get("post") == "yes"
        keep_volumes = request.POST.get("keep_volumes") == "on"
        rows = []
        for stack in stacks:
            typed = request.POST.get(f"confirm_{stack.pk}", "").strip() if confirmed else ""
            names = stack.server_names()
            rows.append(
                {
                    "stack": stack,
                    "expected": str(stack),
                    "typed": typed,
                    "error": confirmed and typed != str(stack),
                    "domains": [d.domain for d in stack.domains.all() if d.released_at is None],
                    "containers": names.containers,
                    "volumes": names.volumes,
                }
            )
        if confirmed and not any(row["error"] for row in rows):
            with transaction.atomic():
                queued, skipped = services.request_operations(
                    stacks,
                    OperationKind.DELETE,
                    actor=request.user,
                    parameters={"keep_volumes": True} if keep_volumes else None,
                )
            label = "delete (volumes kept)" if keep_volumes else "delete"
            self._report(request, label, queued, skipped)
            return None
        context = self._confirmation_context(request, "delete_stacks", "Delete stacks?", stacks)
        context["rows"] = rows
        context["mismatch"] = confirmed
        context["keep_volumes"] = keep_volumes
        return TemplateResponse(request, "admin/stacks/stack/confirm_delete.html", context)

    @admin.action(description="Redeploy onto kept volumes", permissions=["deploy"])
    def redeploy_onto_kept_volumes(self, request: HttpRequest, queryset: QuerySet) -> None:
        """A new stack for each deleted stack whose delete kept its volumes, mounting them."""
        queued: list[Operation] = []
        skipped: list[tuple[Stack, str]] = []
        for stack in queryset.select_related("tenant"):
            kept = recovery.kept_volumes_of(stack)
            if kept is None:
                skipped.append((stack, "its delete did not keep its volumes"))
                continue
            try:
                queued.append(recovery.redeploy_onto_kept(kept, actor=request.user))
            except (recovery.RecoveryRefused, services.OperationRefused) as refused:
                skipped.append((stack, str(refused)))
        self._report(request, "redeploy onto kept volumes", queued, skipped)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """The listed actions, plus redeploying onto kept volumes (data recovery) when that is
        what a deleted stack's page posts: the list's menu keeps the live stacks' actions."""
        actions = super().get_actions(request)  # type: ignore[misc]
        if _posted_redeploy(request) and self.has_deploy_permission(request):
            action = type(self).redeploy_onto_kept_volumes
            actions[KEPT] = (action, KEPT, action.short_description)  # type: ignore[attr-defined]
        return actions

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> Any:
        """Buttons on a stack's page run list actions; bring the user back to that page."""
        if _posted_redeploy(request):
            queryset = self.get_queryset(request)  # type: ignore[attr-defined]  # list hides deleted
        response = super().response_action(request, queryset)  # type: ignore[misc]
        back = request.POST.get("_return_to", "")
        if (
            isinstance(response, HttpResponseRedirect)
            and back.startswith("/")
            and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
        ):
            return HttpResponseRedirect(back)
        return response

    # --- the stack page -----------------------------------------------------------------------

    def stack_buttons(
        self, request: HttpRequest, stack: Stack, last: Operation | None
    ) -> list[dict[str, Any]]:
        buttons = []
        for action, label, permission, kind in STACK_BUTTONS:
            if getattr(self, f"has_{permission}_permission")(request) and stack.accepts(kind):
                buttons.append(
                    {"action": action, "label": label, "danger": kind == OperationKind.DELETE}
                )
        if stack.status == StackStatus.DELETED and self.has_deploy_permission(request):
            kept = recovery.kept_volumes_of(stack)
            if kept is not None and kept.reused_by_id is None:
                label = f"Redeploy onto kept volumes ({len(kept.volumes)})"
                buttons.append({"action": KEPT, "label": label, "danger": False})
        if last and last.status == OperationStatus.FAILED and self.has_deploy_permission(request):
            buttons.insert(
                0,
                {
                    "action": "retry_failed",
                    "label": f"Retry failed {last.get_kind_display().lower()}",
                    "danger": False,
                },
            )
        return buttons

    def progress_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The stack's latest operation as an HTML fragment, polled while it runs."""
        stack = self.get_object(request, object_id)
        if stack is None or not self.has_view_permission(request, stack):
            raise Http404
        operation = stack.operations.first()
        return TemplateResponse(
            request,
            "admin/stacks/stack/operation_progress.html",
            {
                "operation": operation,
                "stack": stack,
                "cancel_url": self.cancel_url(request, stack, operation),
            },
        )

    # --- cancel a queued operation ------------------------------------------------------------

    def can_cancel(self, request: HttpRequest, operation: Operation) -> bool:
        return permissions.may_cancel(request.user, operation)

    def cancel_url(self, request: HttpRequest, stack: Stack, operation: Operation | None) -> str:
        if operation is None or not operation.can_be_cancelled:
            return ""
        if not self.can_cancel(request, operation):
            return ""
        return reverse("admin:stacks_stack_cancel_operation", args=[stack.pk, operation.pk])

    def cancel_operation_view(
        self, request: HttpRequest, object_id: str, operation_id: int
    ) -> HttpResponse:
        """A confirmation page asking why; on POST, services.cancel_operation decides."""
        stack = self.get_object(request, object_id)
        if stack is None or not self.has_view_permission(request, stack):
            raise Http404
        operation = stack.operations.filter(pk=operation_id).first()
        if operation is None:
            raise Http404
        if not self.can_cancel(request, operation):
            raise PermissionDenied
        stack_url = reverse("admin:stacks_stack_change", args=[stack.pk])
        refusal = services.cancellation_refusal(operation)
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return HttpResponseRedirect(stack_url)
        form = CancelOperationForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            try:
                services.cancel_operation(
                    operation, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except services.OperationRefused as refused:
                self.message_user(request, refused.message, messages.ERROR)
                return HttpResponseRedirect(stack_url)
            stack.refresh_from_db()
            self.message_user(
                request,
                f"{operation} cancelled; {stack} is {stack.get_status_display().lower()}.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(stack_url)
        after = services.stack_status_after_cancel(stack)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Cancel {operation} of {stack}?",
            "stack": stack,
            "operation": operation,
            "form": form,
            "stack_url": stack_url,
            "status_after": after,
            "status_after_label": StackStatus(after).label.lower(),
            "status_changes": after != stack.status,
        }
        return TemplateResponse(request, "admin/stacks/stack/confirm_cancel.html", context)

    def operation_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("deploy/", view(self.deploy_view), name="stacks_stack_deploy"),
            path(
                "<path:object_id>/progress/", view(self.progress_view), name="stacks_stack_progress"
            ),
            path(
                "<path:object_id>/cancel/<int:operation_id>/",
                view(self.cancel_operation_view),
                name="stacks_stack_cancel_operation",
            ),
        ]
