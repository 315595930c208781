"""Contain an incident's stacks (issue 15): stop, isolate or release one linked stack or all of
them; each is an operation through stacks.services carrying the incident id, a timeline line
and an audit event. The panel is ops.response.containment_panel's."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef

from cfadmin.models import AuditAction
from cfadmin.permissions import may
from ops import incidents
from ops.incident_actions import WORK_INCIDENT, Action, ActionForm, Form, Outcome
from ops.models import Incident, IncidentEventKind
from ops.response import Feature
from ops.response.containment_panel import CONTAINMENT_KINDS, linked_stacks, panel
from stacks import services
from stacks.choices import OperationKind
from stacks.models import Operation, Stack
from stacks.permissions import CONTAIN

ALL = "all"
# Action name → the operation kind it requests, and the verb the timeline uses.
KINDS: dict[str, tuple[str, str]] = {
    "contain_stop": (OperationKind.STOP, "stop"),
    "contain_isolate": (OperationKind.ISOLATE, "isolate"),
    "contain_release": (OperationKind.RELEASE, "release"),
}

CONTAIN_FORM = ActionForm(
    "contain",
    "Stop, isolate or release linked stacks",
    "Stop keeps the stack's domains; isolate also takes its domains off in Coolify (Traefik "
    "routes nothing to it) and keeps its volumes and stored domains; release puts exactly "
    "those domains back and starts it.",
)


def chosen_stacks(incident: Incident, choice: str) -> list[Stack]:
    """The linked live stacks the form names: one by id, or all of them."""
    stacks = linked_stacks(incident)
    if choice == ALL:
        if not stacks:
            raise ValidationError("No live stack is linked to this incident.")
        return stacks
    found = [stack for stack in stacks if str(stack.pk) == (choice or "").strip()]
    if not found:
        raise ValidationError({"stack": "Choose a stack linked to this incident, or all."})
    return found


def request_containment(
    incident: Incident, kind: str, stacks: list[Stack], *, actor: Any
) -> tuple[list[Any], list[tuple[Stack, str]]]:
    """Queue `kind` on each stack with the incident's id; one timeline line and one audit
    event for the request (each operation is audited by stacks.services too)."""
    label = OperationKind(kind).label.lower()
    with transaction.atomic():
        queued, skipped = services.request_operations(
            stacks, kind, actor=actor, parameters={"incident_id": incident.pk}
        )
        parts = []
        if queued:
            parts.append(
                f"{label} requested for "
                + ", ".join(f"{op.stack} (operation #{op.pk})" for op in queued)
            )
        if skipped:
            parts.append("skipped " + "; ".join(f"{stack}: {why}" for stack, why in skipped))
        message = f"Containment: {'; '.join(parts)}."
        incidents.log_action(
            incident,
            IncidentEventKind.CONTAINMENT,
            message,
            actor=actor,
            action=AuditAction.OPERATION,
            changes={
                "kind": kind,
                "operations": [op.pk for op in queued],
                "skipped": [str(stack) for stack, _ in skipped],
            },
        )
    return queued, skipped


def _run(action: str) -> Any:
    kind, verb = KINDS[action]

    def run(incident: Incident, form: Form, *, actor: Any) -> Outcome:
        if incident.is_resolved:  # the form is not offered then; a stale page may still post
            raise ValidationError("The incident is resolved: reopen it to contain stacks.")
        stacks = chosen_stacks(incident, form.get("stack", ""))
        queued, skipped = request_containment(incident, kind, stacks, actor=actor)
        if not queued:
            raise ValidationError(
                "; ".join(f"{stack}: {why}" for stack, why in skipped) or f"nothing to {verb}"
            )
        text = f"Queued {verb} of {len(queued)} stack{'s' if len(queued) != 1 else ''}"
        if skipped:
            text += f"; skipped {len(skipped)}: " + "; ".join(
                f"{stack}: {why}" for stack, why in skipped
            )
        return Outcome(message=text + ". Follow them in the Contain panel.")

    return run


def forms(incident: Incident, user: Any) -> tuple[ActionForm, ...]:
    if incident.is_resolved or not (may(user, WORK_INCIDENT) and may(user, CONTAIN)):
        return ()
    if not linked_stacks(incident):
        return ()
    return (CONTAIN_FORM,)


FEATURE = Feature(
    key="containment",
    heading="Contain",
    actions={name: Action(_run(name), (WORK_INCIDENT, CONTAIN)) for name in KINDS},
    forms=forms,
    panel=panel,
    presence=lambda: Exists(
        Operation.objects.filter(stack__incidents=OuterRef("pk"), kind__in=CONTAINMENT_KINDS)
    ),
)
