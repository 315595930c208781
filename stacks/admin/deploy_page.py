"""The stack admin's deploy page: step 1 picks the tenant and template, step 2 is the template's
form, previewed (dry-run) before it can be deployed; a form shown again keeps every value, the
secrets server-side (stacks.previews)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from stacks import previews, services
from stacks.catalog import template_names
from stacks.compose import load_manifest
from stacks.forms import DeployForm, DeployStartForm
from stacks.plan import build_deploy_plan

DEPLOY_PURPOSE = "deploy"  # the deploy form's kept secrets (stacks.previews.keep_secrets)


def _plan_context(plan: dict[str, Any]) -> dict[str, Any]:
    return {
        "plan": plan,
        "calls_json": json.dumps(plan["coolify_calls"], indent=2),
        "pocketbase_json": json.dumps((plan.get("pocketbase") or {}).get("record"), indent=2),
    }


class StackDeployMixin:
    """Mixed into StackAdmin (a ModelAdmin) with StackOperationsMixin, whose permission
    methods it asks."""

    @method_decorator(sensitive_post_parameters())  # the template's env values are secrets
    def deploy_view(self, request: HttpRequest) -> HttpResponse:
        """Step 1 picks the tenant and template (checked before going on); step 2 is the
        template's form, previewed (dry-run) before the Deploy button appears. A form shown
        again keeps every value: the secrets server-side, encrypted (stacks.previews)."""
        can_preview = self.has_dry_run_permission(request) or self.has_deploy_permission(request)
        if not can_preview:
            raise PermissionDenied
        can_deploy = self.has_deploy_permission(request)
        form: DeployForm | None = None
        if request.method == "POST" and "_deploy" in request.POST:
            if not can_deploy:
                raise PermissionDenied
            outcome = self._deploy_from_preview(request)
            if isinstance(outcome, HttpResponse):
                return outcome
            form = outcome
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Deploy a new stack" if can_deploy else "Preview a deploy (dry-run)",
            "template_names": template_names(),
            "can_deploy": can_deploy,
            "plan": None,
            "token": None,
            "kept_token": "",
        }
        if form is None and request.method == "POST" and "_preview" in request.POST:
            form = self._preview(request, can_deploy, context)
        if form is None:
            form = self._deploy_step_two(request)
        if form is None:
            start = DeployStartForm(
                request.GET if "template" in request.GET else None,
                initial={"tenant": request.GET.get("tenant", "")},
            )
            context.update({"start_form": start, "media": start.media})
            return TemplateResponse(request, "admin/stacks/stack/deploy.html", context)
        context.update({"form": form, "manifest": form.manifest, "media": form.media})
        return TemplateResponse(request, "admin/stacks/stack/deploy.html", context)

    def _deploy_step_two(self, request: HttpRequest) -> DeployForm | None:
        """The template's empty form once step 1 (tenant and template) is valid; else None."""
        if "template" not in request.GET:
            return None
        start = DeployStartForm(request.GET)
        if not start.is_valid():
            return None
        tenant = start.cleaned_data["tenant"]
        initial = {
            "tenant": tenant,
            "template": start.cleaned_data["template"],
            "project_name": f"{tenant.slug}-project",
        }
        return DeployForm(initial=initial, manifest=load_manifest(start.cleaned_data["template"]))

    def _preview(
        self, request: HttpRequest, can_deploy: bool, context: dict[str, Any]
    ) -> DeployForm | None:
        """Validate and dry-run the form; the plan only when it can be deployed. Secrets typed
        are kept for the form shown again (valid ones; an invalid one is asked for again)."""
        template = request.POST.get("template", "")
        if template not in template_names():
            return None  # back to step 1
        kept_token = request.POST.get("kept", "")
        form = DeployForm(
            request.POST,
            manifest=load_manifest(template),
            kept=previews.kept_secrets(request.session, DEPLOY_PURPOSE, kept_token),
        )
        if form.is_valid():
            deploy_request = form.to_request()
            plan = build_deploy_plan(deploy_request)
            for error in plan["errors"]:
                field = DeployForm.field_for(error["field"])
                form.add_error(field if field in form.fields else None, error["message"])
            if plan["ok"]:
                context.update(_plan_context(plan))
                if can_deploy:
                    context["token"] = previews.remember(request.session, deploy_request)
        self._keep_secrets(request, form, kept_token, context)
        return form

    def _keep_secrets(
        self, request: HttpRequest, form: DeployForm, replaces: str, context: dict[str, Any]
    ) -> None:
        kept = form.secrets_to_keep()
        context["kept_token"] = previews.keep_secrets(
            request.session, DEPLOY_PURPOSE, kept, replaces=replaces
        )
        form.mark_kept(kept)

    def _deploy_from_preview(self, request: HttpRequest) -> HttpResponse | DeployForm | None:
        """The previewed request, deployed: a redirect to the stack. Refused: the form again,
        filled from the request, errors beside their fields. Expired: None (step 1)."""
        deploy_request = previews.take(request.session, request.POST.get("token", ""))
        if deploy_request is None:
            self.message_user(
                request,
                "That preview has expired or was used already: preview the deploy again.",
                messages.ERROR,
            )
            return None
        try:
            with transaction.atomic():
                operation = services.deploy_stack(deploy_request, actor=request.user)
        except services.DeployRefused as refused:
            errors = [(e.field, e.message) for e in refused.errors]
        except services.OperationRefused as refused:
            errors = [("", refused.message)]
        else:
            previews.forget_secrets(request.session, request.POST.get("kept", ""))
            self.message_user(
                request,
                f"Deploy of {operation.stack} queued; this page follows its progress.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(
                reverse("admin:stacks_stack_change", args=[operation.stack_id])
            )
        self.message_user(request, "Nothing was deployed: the form below says why.", messages.ERROR)
        form = DeployForm(
            DeployForm.data_from(deploy_request),
            manifest=load_manifest(deploy_request.template),
            kept=deploy_request.env,
        )
        form.is_valid()
        for field, message in errors:
            name = DeployForm.field_for(field) if field else ""
            form.add_error(name if name in form.fields else None, message)
        return form
