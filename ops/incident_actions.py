"""The buttons on an incident's page: each action a function of the posted form values, and
ACTIONS, the one table of them with the permissions each needs. The admin looks up, checks,
calls and reports; the rules are in ops.incidents and ops.checklists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db.models import Case, Q, QuerySet, Value, When

from ops import checklists, incidents, response
from ops.models import (
    URGENT_CATEGORIES,
    ChecklistRun,
    EscalationContact,
    Incident,
    IncidentStatus,
    Procedure,
)
from ops.permissions import ADD_CHECKLISTRUN, CHANGE_INCIDENT

# Every action changes the incident; this is also the permission to see the action forms.
WORK_INCIDENT = CHANGE_INCIDENT


@dataclass(frozen=True)
class Outcome:
    """What an action did: a message for the person, or the checklist run it started."""

    message: str = ""
    run: ChecklistRun | None = None
    redirect: str = ""  # a page to go to instead of the incident's (a feature's next step)


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


def find_action(name: str) -> Action | None:
    """A built-in action, or one an incident response feature declares (ops.response)."""
    return ACTIONS.get(name) or response.actions().get(name)


def procedures_offered() -> QuerySet[Procedure]:
    """The active procedures an incident's page offers, urgent ones (emergency, security)
    first."""
    return Procedure.objects.filter(active=True).order_by(
        Case(When(category__in=URGENT_CATEGORIES, then=Value(0)), default=Value(1)),
        "category",
        "title",
    )


# --- what the incident page shows of them ----------------------------------------------------


@dataclass(frozen=True)
class ActionForm:
    """One form on an incident's page: its template (admin/ops/incident/action_<key>.html),
    the legend it is labelled with and a line saying when to use it."""

    key: str
    legend: str
    help: str


@dataclass(frozen=True)
class ActionGroup:
    """Forms that do the same kind of thing, under one heading."""

    heading: str
    forms: tuple[ActionForm, ...]


STATUS_FORM = ActionForm(
    "status",
    "Change status",
    "Acknowledge when you start on it (that is the response); mitigated when customers are "
    "no longer affected.",
)
RESOLVE_FORM = ActionForm("resolve", "Resolve", "When it is fixed: say what fixed it.")
REOPEN_FORM = ActionForm("status", "Reopen", "If it came back: say why.")
NOTE_FORM = ActionForm("note", "Add to the timeline", "What you did or saw, as it happens.")
ESCALATE_FORM = ActionForm(
    "escalate", "Record an escalation", "Whom you escalated to and how (called, paged…)."
)
CHECKLIST_FORM = ActionForm(
    "checklist", "Run a runbook procedure", "Starts a checklist run inside this incident."
)


def action_groups(
    incident: Incident, *, can_start_runs: bool, user: Any = None
) -> list[ActionGroup]:
    """The forms an incident's page offers, grouped by what they do: respond (the status),
    record (timeline, escalation), run the runbook, then each response feature's (ops.response)
    that the user may use (none without a user). Only the forms that can do something now."""
    respond: list[ActionForm] = []
    if any(incident.can_become(status) for status in STATUS_BUTTONS):
        respond.append(REOPEN_FORM if incident.is_resolved else STATUS_FORM)
    if incident.can_become(IncidentStatus.RESOLVED):
        respond.append(RESOLVE_FORM)
    groups = [
        ActionGroup("Respond", tuple(respond)),
        ActionGroup("Record", (NOTE_FORM, ESCALATE_FORM)),
        ActionGroup("Runbook", (CHECKLIST_FORM,) if can_start_runs else ()),
        *(
            ActionGroup(feature.heading, feature.forms(incident, user))
            for feature in response.features()
            if feature.forms and user is not None
        ),
    ]
    return [group for group in groups if group.forms]


# The status buttons of the "Change status" form, in order, with their labels (offered where
# the move is allowed); resolving has its own form, as it needs a resolution.
STATUS_BUTTONS = {
    IncidentStatus.ACKNOWLEDGED: "Acknowledge",
    IncidentStatus.MITIGATED: "Mark mitigated",
    IncidentStatus.OPEN: "Reopen",
}


def owner_choices() -> QuerySet[Any]:
    """Who may own an incident: active staff who may work incidents (support and up, through
    their role or a permission of their own) and superusers; never a viewer."""
    app_label, codename = WORK_INCIDENT.split(".")
    work = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    users = get_user_model().objects
    may_work = Q(is_superuser=True) | Q(
        pk__in=users.filter(Q(groups__permissions__in=work) | Q(user_permissions__in=work)).values(
            "pk"
        )
    )
    return users.filter(may_work, is_staff=True, is_active=True).order_by("username")
