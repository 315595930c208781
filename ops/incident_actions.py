"""The buttons on an incident's page: each action a function of the posted form values, and
ACTIONS, the one table of them with the permissions each needs. The admin looks up, checks,
calls and reports; the rules are in ops.incidents and ops.checklists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Case, QuerySet, Value, When

from ops import checklists, incidents
from ops.models import URGENT_CATEGORIES, ChecklistRun, EscalationContact, Incident, Procedure
from ops.permissions import ADD_CHECKLISTRUN, CHANGE_INCIDENT

# Every action changes the incident; this is also the permission to see the action forms.
WORK_INCIDENT = CHANGE_INCIDENT


@dataclass(frozen=True)
class Outcome:
    """What an action did: a message for the person, or the checklist run it started."""

    message: str = ""
    run: ChecklistRun | None = None


Form = Mapping[str, str]


def posted_id(text: str | None) -> int:
    """A posted id, or 0 (matches nothing) when it is not a number."""
    return int(text) if text and text.isdigit() else 0


def change_status(incident: Incident, form: Form, *, actor: Any) -> Outcome:
    """Acknowledge, mark mitigated, resolve (with a resolution) or reopen (with a reason)."""
    incidents.change_status(
        incident,
        form.get("status", ""),
        actor=actor,
        note=form.get("note", ""),
        resolution=form.get("resolution", ""),
    )
    return Outcome(f"Incident is now {incident.get_status_display().lower()}.")


def add_note(incident: Incident, form: Form, *, actor: Any) -> Outcome:
    incidents.add_note(incident, form.get("note", ""), actor=actor)
    return Outcome("Note added.")


def escalate(incident: Incident, form: Form, *, actor: Any) -> Outcome:
    contact = EscalationContact.objects.filter(pk=posted_id(form.get("contact"))).first()
    if contact is None:
        raise ValidationError({"contact": "Choose whom to escalate to."})
    incidents.escalate(incident, contact, actor=actor, how=form.get("how", ""))
    return Outcome(f"Escalation to {contact.team} recorded.")


def start_checklist(incident: Incident, form: Form, *, actor: Any) -> Outcome:
    """A run of an active procedure inside the incident, its automatic checks queued."""
    procedure = Procedure.objects.filter(pk=posted_id(form.get("procedure")), active=True).first()
    if procedure is None:
        raise ValidationError({"procedure": "Choose a procedure to run."})
    return Outcome(run=checklists.start_checklist(procedure, actor=actor, incident=incident))


@dataclass(frozen=True)
class Action:
    run: Callable[..., Outcome]
    permissions: tuple[str, ...]


# URL action name → what it does and the permissions it needs (all of them).
ACTIONS: dict[str, Action] = {
    "status": Action(change_status, (WORK_INCIDENT,)),
    "note": Action(add_note, (WORK_INCIDENT,)),
    "escalate": Action(escalate, (WORK_INCIDENT,)),
    "checklist": Action(start_checklist, (WORK_INCIDENT, ADD_CHECKLISTRUN)),
}


def procedures_offered() -> QuerySet[Procedure]:
    """The active procedures an incident's page offers, urgent ones (emergency, security)
    first."""
    return Procedure.objects.filter(active=True).order_by(
        Case(When(category__in=URGENT_CATEGORIES, then=Value(0)), default=Value(1)),
        "category",
        "title",
    )
