"""Mass-failure triage (issue 15 point 4) on the incident cfadmin opens when several stacks
leave `running` at once (ops.response.auto_incidents): the Triage panel shows the pattern; an
operator stops the stacks in the runbook's order, then restarts them in waves."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef

from cfadmin.permissions import may
from ops.incident_actions import WORK_INCIDENT, Action, ActionForm, Form, Outcome
from ops.models import Incident
from ops.models.mass_failure import MassFailure
from ops.response import Feature
from ops.response import mass_failure_waves as waves
from ops.response.mass_failure_panel import mass_failure_of, panel
from stacks.permissions import START, STOP

STOP_FORM = ActionForm(
    "triage_stop",
    "Emergency stop, highest resource limits first",
    "Stops the stacks of this mass failure in the runbook's order (base-llm first, by memory "
    "limit): all of them, or only the first so many.",
)
RESTART_FORM = ActionForm(
    "triage_restart",
    "Gradual restart in waves",
    "When the server copes again: starts the stopped stacks a wave at a time, lightest first; "
    "each wave only after the previous one runs. A failed wave halts the restart.",
)


def _number(text: str | None, field: str, rule: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValidationError({field: rule})
    return int(text)


def refuse_if_resolved(incident: Incident) -> None:
    """The triage forms are not offered on a resolved incident; a stale page may still post."""
    if incident.is_resolved:
        raise ValidationError("The incident is resolved: reopen it to stop or restart stacks.")


def stop(incident: Incident, form: Form, *, actor: Any) -> Outcome:
    refuse_if_resolved(incident)
    count = _number(form.get("count"), "count", "Give how many stacks to stop, or leave it empty.")
    queued, skipped = waves.stop_in_order(incident, actor=actor, count=count)
    if not queued:
        raise ValidationError("; ".join(f"{stack}: {why}" for stack, why in skipped))
    text = f"Queued the stop of {len(queued)} stacks, highest resource limits first"
    if skipped:
        text += f"; {len(skipped)} not stopped (see the timeline)"
    return Outcome(message=text + ".")


def restart(incident: Incident, form: Form, *, actor: Any) -> Outcome:
    refuse_if_resolved(incident)
    size = _number(form.get("wave_size"), "wave_size", "Give the wave size as a number.")
    planned = waves.plan_restart(incident, actor=actor, wave_size=size or 0)
    return Outcome(
        message=f"Restart planned in {len(planned)} waves; the first starts now, each next one "
        "when the previous is healthy. Follow it in the Triage panel."
    )


def resolve_blockers(incident: Incident, resolution: str) -> list[str]:
    """A restart under way must finish (or fail) before the incident is resolved."""
    mass = mass_failure_of(incident)
    if mass is None:
        return []
    wave = mass.waves.filter(status__in=waves.OPEN_WAVES).order_by("number").first()
    if wave is None:
        return []
    return [
        f"The gradual restart is under way (wave {wave.number}): wait until its last wave is "
        "healthy or has failed before resolving."
    ]


def forms(incident: Incident, user: Any) -> tuple[ActionForm, ...]:
    if incident.is_resolved or not may(user, WORK_INCIDENT):
        return ()
    mass = mass_failure_of(incident)
    if mass is None:
        return ()
    offered = []
    if may(user, STOP) and waves.stoppable(mass):
        offered.append(STOP_FORM)
    if may(user, START) and waves.restartable(mass):
        offered.append(RESTART_FORM)
    return tuple(offered)


FEATURE = Feature(
    key="mass_failure",
    heading="Triage",
    actions={
        "mass_failure_stop": Action(stop, (WORK_INCIDENT, STOP)),
        "mass_failure_restart": Action(restart, (WORK_INCIDENT, START)),
    },
    forms=forms,
    panel=panel,
    presence=lambda: Exists(MassFailure.objects.filter(incident=OuterRef("pk"))),
    resolve_blockers=resolve_blockers,
)
