"""The incident feature "customer_updates" (issue 16 point 6): support and up message the
affected tenants' contacts from an incident. The incident's page offers a template and a line
of news; the compose page shows each tenant's message as it will be sent, lets the operator
edit it, and sends (one e-mail per tenant contact, queued; one timeline line). The rules are in
ops.notifications.customer_updates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from ops import response
from ops.incident_actions import WORK_INCIDENT, ActionForm
from ops.models import Incident
from ops.models.notifications import CustomerMessageTemplate
from ops.notifications import customer_updates as rules
from ops.permissions import may
from ops.response import Feature
from stacks.models import Stack
from tenants.models import Tenant

COMPOSE_URL_NAME = "ops_incident_customer_update"
PREVIEWS_SHOWN = 10  # full messages on the compose page; the other recipients are listed


@dataclass(frozen=True)
class CustomerUpdateForm(ActionForm):
    """The incident page's "Message customers" form: the active templates to start from, or
    why there is nobody to message."""

    templates: tuple[CustomerMessageTemplate, ...] = ()
    has_recipients: bool = False
    compose_url: str = ""
    templates_url: str = ""


def presence() -> Any:
    """Whether an affected tenant (linked, or through a linked stack) has a contact e-mail."""
    with_address = Tenant.objects.exclude(contact_email="")
    return Exists(with_address.filter(incidents=OuterRef("pk"))) | Exists(
        Stack.objects.filter(incidents=OuterRef("pk"), tenant__in=with_address.values("pk"))
    )


def compose_url(incident: Incident) -> str:
    return reverse(f"admin:{COMPOSE_URL_NAME}", args=[incident.pk])


def forms(incident: Incident, user: Any) -> tuple[ActionForm, ...]:
    """To support and up; the templates are read only when someone can be messaged."""
    if not may(user, WORK_INCIDENT):
        return ()
    reachable = response.present(incident, "customer_updates")
    return (
        CustomerUpdateForm(
            "customer_update",
            "Message customers",
            "E-mail the affected tenants' contacts from a template; you see and can edit "
            "each message before it is sent.",
            templates=tuple(rules.active_templates()) if reachable else (),
            has_recipients=reachable,
            compose_url=compose_url(incident),
            templates_url=reverse("admin:ops_customermessagetemplate_changelist"),
        ),
    )


# --- the compose page --------------------------------------------------------------------------


def compose_context(incident: Incident, draft: rules.Draft) -> dict[str, Any]:
    previews = rules.preview(incident, draft)
    return {
        "incident": incident,
        "draft": draft,
        "templates": list(rules.active_templates()),
        "previews": previews[:PREVIEWS_SHOWN],
        "more_recipients": previews[PREVIEWS_SHOWN:],
        "recipient_count": len(previews),
        "status_page_url": rules.status_page_url(),
        "compose_url": compose_url(incident),
        "incident_url": reverse("admin:ops_incident_change", args=[incident.pk]),
    }


def compose_view(model_admin: Any, request: HttpRequest, incident_id: int) -> HttpResponse:
    """GET or POST (preview): the draft and each tenant's message; POST with `_send`: send."""
    if not may(request.user, WORK_INCIDENT):
        raise PermissionDenied
    incident = get_object_or_404(Incident, pk=incident_id)
    form: Any = request.POST if request.method == "POST" else request.GET
    switched = form.get("loaded") != form.get("template")
    if switched:
        # A template was (re)chosen: start from its text, keeping the operator's news; it is
        # shown before anything is sent.
        form = {key: form.get(key) for key in ("template", "update")}
    draft = rules.read_draft(form)
    errors: dict[str, list[str]] = {}
    if request.method == "POST" and "_send" in request.POST and not switched:
        try:
            sent = rules.send(incident, form, actor=request.user)
        except ValidationError as error:
            errors = error.message_dict
        else:
            if sent:
                noun = "tenant contact" if sent == 1 else "tenant contacts"
                messages.success(request, f"Customer update queued for {sent} {noun}.")
            else:
                messages.info(request, "This update was sent already: nothing was sent twice.")
            return HttpResponseRedirect(reverse("admin:ops_incident_change", args=[incident.pk]))
    elif request.method == "POST" and draft.template is None:
        errors = {"template": [rules.NO_TEMPLATE]}
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Message customers about {incident}",
        "errors": errors,
        **compose_context(incident, draft),
    }
    return TemplateResponse(request, "admin/ops/incident/customer_update.html", context)


def urls(model_admin: Any) -> list[Any]:
    """The compose page, under the incident admin (url_permissions: ops.change_incident)."""
    view = model_admin.admin_site.admin_view
    return [
        path(
            "<int:incident_id>/customer-update/",
            view(lambda request, **kw: compose_view(model_admin, request, **kw)),
            name=COMPOSE_URL_NAME,
        )
    ]


FEATURE = Feature(
    key="customer_updates",
    heading="Customers",
    forms=forms,
    urls=urls,
    presence=presence,
)
