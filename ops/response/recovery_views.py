"""The PocketBase backups page under an incident: the last listing a worker read (name, size,
modified) and a button to refresh it. Read-only; PocketBase is never called in the request."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path

from ops.models import Incident
from ops.permissions import VIEW_INCIDENT, may
from ops.response.recovery_jobs import stored_listing

BACKUPS_URL = "ops_incident_recovery_backups"


def backups_view(model_admin: Any, request: HttpRequest, incident_id: int) -> Any:
    if not may(request.user, VIEW_INCIDENT):
        raise PermissionDenied
    incident = get_object_or_404(Incident, pk=incident_id)
    from ops.response.recovery import may_back_up  # the feature module imports this one

    backups, fetched_at = stored_listing()
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "PocketBase backups",
        "incident": incident,
        "backups": backups,
        "fetched_at": fetched_at,
        "can_back_up": may_back_up(request.user),
    }
    return TemplateResponse(request, "admin/ops/incident/recovery/backups.html", context)


def urls(model_admin: Any) -> list[Any]:
    """The page, under the incident admin (the lead declares its url_permissions)."""
    view = model_admin.admin_site.admin_view
    return [
        path(
            "<int:incident_id>/recovery/backups/",
            view(lambda request, **kw: backups_view(model_admin, request, **kw)),
            name=BACKUPS_URL,
        ),
    ]
