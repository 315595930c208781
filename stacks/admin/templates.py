"""Stacks > Templates in the admin: the list of stack templates with their audit, and one
template rendered for sample names. Mixed into StackAdmin; stacks.compose does the work."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from cfadmin.validators import validate_dns_label
from stacks.catalog import template_names
from stacks.compose import (
    RULES,
    SAMPLE_STACK,
    SAMPLE_TENANT,
    TemplateError,
    all_manifests,
    load_manifest,
    render_sample,
)
from stacks.models import Stack


class TemplateViewsMixin:
    """Mixed into StackAdmin (a ModelAdmin): the template pages under its URLs."""

    def template_urls(self) -> list:
        view = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path("templates/", view(self.templates_view), name="stacks_templates"),
            path("templates/<str:name>/", view(self.template_view), name="stacks_template"),
        ]

    def _template_context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "rules": RULES,
        }

    def templates_view(self, request: HttpRequest) -> HttpResponse:
        """Read-only list of the stack templates with version, env keys and audit status."""
        context = self._template_context(request, "Stack templates")
        live = Stack.objects.live_count_by_template()  # one query for every template
        rows = []
        for manifest in all_manifests():
            findings = render_sample(manifest).findings
            rows.append(
                {
                    "manifest": manifest,
                    "findings": findings,
                    "stacks": live.get(manifest.name, 0),
                }
            )
        context["rows"] = rows
        return TemplateResponse(request, "admin/stacks/templates.html", context)

    def template_view(self, request: HttpRequest, name: str) -> HttpResponse:
        """One template: manifest, audit, and a rendered preview for sample names."""
        if name not in template_names():
            raise Http404("No such template")
        manifest = load_manifest(name)
        context = self._template_context(request, f"Template {name}")
        tenant = request.GET.get("tenant", SAMPLE_TENANT).strip()
        stack_name = request.GET.get("stack_name", SAMPLE_STACK).strip()
        errors = {}
        for field_name, value in (("tenant", tenant), ("stack_name", stack_name)):
            try:
                validate_dns_label(value)
            except ValidationError as error:
                errors[field_name] = " ".join(error.messages)
        rendered = None
        if not errors:
            try:
                rendered = render_sample(manifest, tenant=tenant, stack_name=stack_name)
            except TemplateError as exc:
                errors["template"] = str(exc)
        context.update(
            {
                "manifest": manifest,
                "manifest_data": manifest.as_dict(),
                "rendered": rendered,
                "errors": errors,
                "tenant": tenant,
                "stack_name": stack_name,
            }
        )
        return TemplateResponse(request, "admin/stacks/template_detail.html", context)

    # The rotate-secrets action posts new values to the changelist, and the change form posts
