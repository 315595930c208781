"""The evidence pages under an incident: one item (content escaped, full hash, whether it still
matches), its download as text, and every item of the incident as one JSON file. Read-only;
downloads are audited."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path

from cfadmin import audit
from cfadmin.models import AuditAction
from ops.models import Incident
from ops.models.evidence import EvidenceItem
from ops.permissions import VIEW_INCIDENT, may

TEXT = "text/plain; charset=utf-8"


def evidence_item(incident_id: int, item_id: int, user: Any) -> EvidenceItem:
    """An item of the incident, for someone who may view incidents (else 403/404)."""
    if not may(user, VIEW_INCIDENT):
        raise PermissionDenied
    return get_object_or_404(
        EvidenceItem.objects.select_related("incident", "stack__tenant"),
        pk=item_id,
        incident_id=incident_id,
    )


def item_view(model_admin: Any, request: HttpRequest, incident_id: int, item_id: int) -> Any:
    item = evidence_item(incident_id, item_id, request.user)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": item.title,
        "incident": item.incident,
        "item": item,
        "hash_matches": item.hash_matches,
    }
    return TemplateResponse(request, "admin/ops/incident/evidence/item.html", context)


def download_view(request: HttpRequest, incident_id: int, item_id: int) -> HttpResponse:
    item = evidence_item(incident_id, item_id, request.user)
    audit.record(
        actor=request.user,
        action=AuditAction.UPDATE,
        target=item.incident,
        message=f"Evidence #{item.pk} downloaded (sha256 {item.sha256})",
    )
    response = HttpResponse(item.content.encode("utf-8"), content_type=TEXT)
    response["Content-Disposition"] = (
        f'attachment; filename="incident-{incident_id}-evidence-{item.pk}.txt"'
    )
    response["X-Evidence-SHA256"] = item.sha256
    return response


def export_document(incident: Incident) -> dict[str, Any]:
    """Every item of the incident, with its hash and whether it still matches."""
    return {
        "incident": {"id": incident.pk, "title": incident.title},
        "items": [
            {
                "id": item.pk,
                "kind": item.kind,
                "stack": item.stack.stack_name if item.stack_id else None,
                "title": item.title,
                "failed": item.failed,
                "captured_by": item.captured_by_repr,
                "captured_at": item.captured_at.isoformat(),
                "sha256": item.sha256,
                "hash_matches": item.hash_matches,
                "content": item.content,
            }
            for item in incident.evidence.select_related("stack").order_by("captured_at", "id")
        ],
    }


def export_view(request: HttpRequest, incident_id: int) -> HttpResponse:
    if not may(request.user, VIEW_INCIDENT):
        raise PermissionDenied
    incident = get_object_or_404(Incident, pk=incident_id)
    document = export_document(incident)
    audit.record(
        actor=request.user,
        action=AuditAction.UPDATE,
        target=incident,
        message=f"Evidence exported ({len(document['items'])} items)",
    )
    response = HttpResponse(
        json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8"),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="incident-{incident_id}-evidence.json"'
    return response


def urls(model_admin: Any) -> list[Any]:
    """The pages, under the incident admin (the lead declares their url_permissions)."""
    view = model_admin.admin_site.admin_view
    return [
        path(
            "<int:incident_id>/evidence/<int:item_id>/",
            view(lambda request, **kw: item_view(model_admin, request, **kw)),
            name="ops_incident_evidence_item",
        ),
        path(
            "<int:incident_id>/evidence/<int:item_id>/download/",
            view(download_view),
            name="ops_incident_evidence_download",
        ),
        path(
            "<int:incident_id>/evidence/export/",
            view(export_view),
            name="ops_incident_evidence_export",
        ),
    ]
