"""The incident response feature "leaks" (issue 15): rotate a leaked value on every stack that
holds it — the button on the incident page, the two-step page (ops.response.leaks_views), the
progress panel and the rule that failed rotations hold back the resolution."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.urls import path

from ops import response
from ops.incident_actions import Action, ActionForm, Outcome
from ops.models import Incident
from ops.models.leaks import LeakRotation, LeakState
from ops.permissions import CHANGE_INCIDENT, may
from ops.response import Feature, Panel, leaks_rotation
from ops.response.leaks_jobs import summary
from stacks.permissions import ROTATE_SECRETS

PANEL_ROWS = 50  # rotations listed on the incident page (failed first); the counts cover all
ROTATE_FORM = ActionForm(
    "leaks",
    "Rotate a leaked value everywhere",
    "An API key or token was exposed: paste it once, cfadmin finds every stack holding it and "
    "rotates it there (new value pushed to Coolify, stack restarted).",
)
RESUME_FORM = ActionForm(
    "leaks_resume",
    "Resume the rotation",
    "Stacks are still waiting for their batch. If nothing moved for minutes (a worker "
    "restarted), queue the rotation job again; it carries on where it stopped.",
)
# What a resolution must say while a rotation failed (the rule resolve_blockers applies).
RESOLUTION_WORD = "rotation"


def may_rotate(user: Any) -> bool:
    """Operators: working incidents and rotating stack secrets."""
    return may(user, CHANGE_INCIDENT) and may(user, ROTATE_SECRETS)


def forms(incident: Incident, user: Any) -> tuple[ActionForm, ...]:
    if incident.is_resolved or not may_rotate(user):
        return ()
    rotating = response.present(incident, "leaks")
    if rotating and LeakRotation.objects.filter(incident=incident).waiting().exists():
        return (RESUME_FORM,)
    return (ROTATE_FORM,)


def resume(incident: Incident, form: Any, *, actor: Any) -> Outcome:
    """Queue the rotation job again for waiting rotations (two jobs never queue a row twice)."""
    leaks_rotation.resume(incident, actor=actor)
    return Outcome("The rotation job is queued again.")


def panel(incident: Incident, request: HttpRequest) -> Panel | None:
    """Progress and outcome per stack: counts by state, then the rows (failed first)."""
    if not response.present(incident, "leaks"):
        return None
    counts = summary(incident)
    total = sum(counts.values())
    if not total:
        return None
    rows = list(
        LeakRotation.objects.filter(incident=incident)
        .with_state()
        .select_related("stack__tenant", "operation")
        .order_by("state_value", "id")[:PANEL_ROWS]
    )
    return Panel(
        "leaks",
        "admin/ops/incident/panel_leaks.html",
        {
            "counts": [(LeakState(state).label, counts[state], state) for state in LeakState],
            "total": total,
            "rows": rows,
            "cut": total > len(rows),
            "done": counts[LeakState.PENDING] + counts[LeakState.RUNNING] == 0,
        },
        order=30,
    )


def resolve_blockers(incident: Incident, resolution: str) -> list[str]:
    """A rotation still under way holds back the resolution; so does a failed one, unless the
    resolution mentions the word "rotation" (saying why it failed, or that it was done by
    hand)."""
    if leaks_rotation.underway(incident):
        return [
            "The rotation of the leaked value is still under way: wait until every stack has "
            "finished (the Leaked value rotation panel shows them)."
        ]
    failed = LeakRotation.objects.filter(incident=incident).failed()
    if RESOLUTION_WORD in (resolution or "").lower() or not failed.exists():
        return []
    names = list(failed.values_list("stack__stack_name", flat=True)[:6])
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    return [
        f"The rotation of the leaked value failed on {failed.count()} stack(s) ({shown}): "
        f'retry them, or say in the resolution why (it must mention the word "{RESOLUTION_WORD}").'
    ]


def urls(model_admin: Any) -> list[Any]:
    from ops.response import leaks_views

    view = model_admin.admin_site.admin_view
    return [
        path(
            "<int:object_id>/leaks/",
            view(leaks_views.find_view(model_admin)),
            name="ops_incident_leaks_find",
        ),
        path(
            "<int:object_id>/leaks/rotate/",
            view(leaks_views.rotate_view(model_admin)),
            name="ops_incident_leaks_rotate",
        ),
    ]


FEATURE = Feature(
    key="leaks",
    heading="Leaked value",
    actions={"leaks_resume": Action(resume, (CHANGE_INCIDENT, ROTATE_SECRETS))},
    forms=forms,
    panel=panel,
    presence=lambda: Exists(LeakRotation.objects.filter(incident=OuterRef("pk"))),
    urls=urls,
    resolve_blockers=resolve_blockers,
)
