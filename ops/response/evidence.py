"""The incident response feature "evidence" (issue 15): capture linked stacks' evidence from
the incident page (support and up) and automatically after an isolate operation; list, view and
download the immutable items. The capture itself is ops.response.evidence_capture."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.db.models.functions import Length
from django.http import HttpRequest

from ops import response
from ops.incident_actions import Action, ActionForm, Form, Outcome
from ops.models import Incident
from ops.models.evidence import EvidenceItem, EvidenceKind
from ops.permissions import CHANGE_INCIDENT, VIEW_INCIDENT, may
from ops.response import Feature, Panel, evidence_capture
from ops.response import evidence_views as views
from ops.response.evidence_capture import request_capture
from stacks.choices import OperationKind, OperationStatus
from stacks.models import Stack

__all__ = ["FEATURE", "capture_after_isolation", "capture_before_isolation", "request_capture"]

CAPTURE = "evidence_capture"  # the action's URL name
CAPTURE_PERMISSION = CHANGE_INCIDENT  # support and up: who works incidents
CAPTURE_FORM = ActionForm(
    "evidence_capture",
    "Capture evidence",
    "Stores what Coolify and cfadmin know of the chosen stacks now (service, env keys — never "
    "values —, container logs, audit trail, template, operations of the last 7 days) as "
    "items that can never be changed.",
)
PANEL_SHOWN = 200  # items listed on the page; the export holds them all


def capture(incident: Incident, form: Form, *, actor: Any) -> Outcome:
    """The form's action: the chosen linked stacks (posted as `stacks`), captured in the worker."""
    getlist = getattr(form, "getlist", None)
    posted = getlist("stacks") if getlist else [form.get("stacks", "")]
    ids = [int(value) for value in posted if value and value.isdigit()]
    chosen = list(incident.stacks.filter(pk__in=ids).order_by("stack_name"))
    if not chosen:
        raise ValidationError({"stacks": "Choose at least one stack linked to the incident."})
    request_capture(incident, chosen, actor=actor)
    return Outcome(
        f"Evidence capture queued for {len(chosen)} stack(s); the items appear under Evidence."
    )


def forms(incident: Incident, user: Any) -> tuple[ActionForm, ...]:
    if not may(user, CAPTURE_PERMISSION) or not response.linked_stacks(incident):
        return ()
    return (CAPTURE_FORM,)


def panel(incident: Incident, request: HttpRequest) -> Panel | None:
    """The items captured so far (newest first), each with links to view and download."""
    if not response.present(incident, "evidence"):
        return None
    items = list(
        EvidenceItem.objects.filter(incident=incident)
        .select_related("stack")
        .defer("content")  # a live panel: the list never loads the (large) contents
        .annotate(characters=Length("content"))
        .order_by("-captured_at", "-id")[: PANEL_SHOWN + 1]
    )
    if not items:
        return None
    return Panel(
        "evidence",
        "admin/ops/incident/panel_evidence.html",
        {
            "items": items[:PANEL_SHOWN],
            "cut": len(items) > PANEL_SHOWN,
            "can_view": may(request.user, VIEW_INCIDENT),
        },
        order=40,
    )


def isolation_target(operation: Any, status: str) -> tuple[Incident, Stack] | None:
    """The incident and stack of an isolate operation in `status` that an incident asked for
    (parameters["incident_id"]); None for any other operation."""
    if operation.kind != OperationKind.ISOLATE or operation.status != status:
        return None
    incident_id = (operation.parameters or {}).get("incident_id")
    if not isinstance(incident_id, int):
        return None
    incident = Incident.objects.filter(pk=incident_id).first()
    stack = Stack.objects.select_related("tenant").filter(pk=operation.stack_id).first()
    return (incident, stack) if incident is not None and stack is not None else None


def capture_after_isolation(operation: Any) -> None:
    """OPERATION_SUCCESS_HOOKS: an isolated stack's evidence, on the incident that asked."""
    target = isolation_target(operation, OperationStatus.SUCCEEDED)
    if target is not None:
        incident, stack = target
        request_capture(incident, [stack], actor=f"system (after {operation.kind} #{operation.pk})")


# What is lost once an isolate has stopped the stack: stopping removes the containers, and
# Coolify's logs endpoint then answers 404 "Container not found." (or 400 "Container is not
# running."; app/Http/Controllers/Api/ServicesController.php logs_by_uuid, as the simulator).
BEFORE_STOP_KINDS = frozenset({EvidenceKind.SERVICE, EvidenceKind.LOGS})


BEFORE_STOP_TIMEOUT = 5.0  # seconds per Coolify call of the capture made before an isolate


def capture_before_isolation(operation: Any) -> None:
    """For a hook run by the worker when an operation starts (proposed OPERATION_START_HOOKS):
    the service and its containers' logs while they still run, captured at once."""
    target = isolation_target(operation, OperationStatus.RUNNING)
    if target is None:
        return
    incident, stack = target
    # Short and not retried: the stack stays reachable until this is done and isolation begins.
    client = evidence_capture.settings_coolify(timeout=BEFORE_STOP_TIMEOUT, attempts=1)
    try:
        evidence_capture.capture_and_report(
            incident,
            stack,
            client,
            actor=f"system (before {operation.kind} #{operation.pk})",
            kinds=BEFORE_STOP_KINDS,
        )
    finally:
        if hasattr(client, "close"):
            client.close()


FEATURE = Feature(
    key="evidence",
    heading="Evidence",
    actions={CAPTURE: Action(capture, (CAPTURE_PERMISSION,))},
    forms=forms,
    panel=panel,
    presence=lambda: Exists(EvidenceItem.objects.filter(incident=OuterRef("pk"))),
    urls=views.urls,
)
