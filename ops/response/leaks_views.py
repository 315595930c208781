"""The two-step page that rotates a leaked value from an incident: 1. paste the exposed value
(a password input); 2. the stacks holding it (tenant, stack, key), the new value(s), confirm.

Between the steps the exposed value lives only encrypted in the session (stacks.previews,
under a token bound to this incident, 15 minutes); step 2 searches again with it. No page ever
puts a value in its HTML, and both views hide posted values from error reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from ops.models import Incident
from ops.response import leaks_rotation
from ops.response.leaks import may_rotate
from stacks import previews

EXPOSED = "exposed"  # the kept entry's name (the value itself is encrypted under it)
FIND_TEMPLATE = "admin/ops/incident/leaks/find.html"
ROTATE_TEMPLATE = "admin/ops/incident/leaks/rotate.html"


def _purpose(incident: Incident) -> str:
    return f"leak:{incident.pk}"


def _incident(request: HttpRequest, object_id: int) -> Incident:
    if not may_rotate(request.user):
        raise PermissionDenied
    return get_object_or_404(Incident, pk=object_id)


def _context(model_admin: Any, request: HttpRequest, incident: Incident, **extra: Any) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Rotate a leaked value — incident #{incident.pk}",
        "incident": incident,
        "incident_url": reverse("admin:ops_incident_change", args=[incident.pk]),
        "refusal": leaks_rotation.refusal(incident),
        **extra,
    }


def find_view(model_admin: Any) -> Callable[..., HttpResponse]:
    """Step 1: paste the exposed value; it is kept encrypted and step 2 shows who holds it."""

    @sensitive_post_parameters()
    @sensitive_variables("exposed", "kept")
    def view(request: HttpRequest, object_id: int) -> HttpResponse:
        incident = _incident(request, object_id)
        error = ""
        if request.method == "POST" and not leaks_rotation.refusal(incident):
            exposed = request.POST.get("exposed", "")
            if exposed.strip():
                kept = {EXPOSED: exposed}
                token = previews.keep_secrets(request.session, _purpose(incident), kept)
                url = reverse("admin:ops_incident_leaks_rotate", args=[incident.pk])
                return HttpResponseRedirect(f"{url}?{urlencode({'kept': token})}")
            error = "Paste the exposed value first."
        context = _context(model_admin, request, incident, error=error)
        return TemplateResponse(request, FIND_TEMPLATE, context)

    return view


def rotate_view(model_admin: Any) -> Callable[..., HttpResponse]:
    """Step 2: the stacks holding the value, the new value (one for all or one per tenant)
    and the confirmation that starts the rotation."""

    @sensitive_post_parameters()
    @sensitive_variables("exposed", "per_tenant", "default")
    def view(request: HttpRequest, object_id: int) -> HttpResponse:
        incident = _incident(request, object_id)
        source = request.POST if request.method == "POST" else request.GET
        token = source.get("kept", "")
        exposed = previews.kept_secrets(request.session, _purpose(incident), token).get(EXPOSED)
        if not exposed:
            model_admin.message_user(
                request,
                "The pasted value is no longer kept (15 minutes, or used already): paste it again.",
                messages.WARNING,
            )
            return HttpResponseRedirect(
                reverse("admin:ops_incident_leaks_find", args=[incident.pk])
            )
        found = leaks_rotation.holdings(exposed)
        errors: list[str] = []
        if request.method == "POST" and found:
            per_tenant = {
                tenant.pk: request.POST.get(f"new_value_{tenant.pk}", "")
                for tenant in leaks_rotation.tenants_of(found)
            }
            try:
                rotations = leaks_rotation.start_rotation(
                    incident,
                    exposed,
                    default=request.POST.get("new_value", ""),
                    per_tenant={pk: value for pk, value in per_tenant.items() if value},
                    actor=request.user,
                )
            except ValidationError as error:
                errors = error.messages
            else:
                previews.forget_secrets(request.session, token)
                model_admin.message_user(
                    request,
                    f"Rotation started on {len(rotations)} stack(s), queued in paced batches; "
                    "the Leaked value panel shows each one.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:ops_incident_change", args=[incident.pk])
                )
        tenants = [
            (tenant, [h for h in found if h.tenant.pk == tenant.pk])
            for tenant in leaks_rotation.tenants_of(found)
        ]
        context = _context(
            model_admin,
            request,
            incident,
            kept_token=token,
            holdings=found,
            tenants=tenants,
            errors=errors,
            find_url=reverse("admin:ops_incident_leaks_find", args=[incident.pk]),
        )
        return TemplateResponse(request, ROTATE_TEMPLATE, context)

    return view
