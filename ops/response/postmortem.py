"""The incident response feature "postmortem" (issue 15): once an incident is resolved, support
and up write its postmortem (impact, root cause, what went well and badly, follow-ups with
owners and due dates) on its page; anyone who may view it downloads it as one Markdown document
(ops.response.postmortem_export). The rules are in ops.response.postmortem_rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from ops import response
from ops.incident_actions import WORK_INCIDENT, Action, ActionForm, Outcome, owner_choices
from ops.models import Incident
from ops.models.postmortem import POSTMORTEM_SECTIONS, Postmortem
from ops.permissions import VIEW_INCIDENT, may
from ops.response import Feature, Panel
from ops.response import postmortem_export as export
from ops.response import postmortem_rules as rules

EXPORT_URL_NAME = "ops_incident_postmortem_export"


@dataclass(frozen=True)
class PostmortemForm(ActionForm):
    """A postmortem form, with what its template shows: the postmortem's sections as written
    (name, heading, text), who may own a follow-up, and the follow-ups."""

    sections: tuple[tuple[str, str, str], ...] = ()
    owners: tuple[Any, ...] = ()
    follow_ups: tuple[Any, ...] = ()


def written(incident: Incident) -> Postmortem | None:
    if not response.present(incident, "postmortem"):
        return None

    def read() -> Postmortem | None:
        try:
            return incident.postmortem
        except ObjectDoesNotExist:
            return None

    return response.remember(incident, "postmortem", read)


# --- actions (posted to admin:ops_incident_work) -----------------------------------------------


def save(incident: Incident, form: Any, *, actor: Any) -> Outcome:
    changed = rules.save_sections(incident, form, actor=actor)
    if not changed:
        return Outcome("The postmortem is unchanged.")
    return Outcome("Postmortem saved: " + ", ".join(h.lower() for h in changed) + ".")


def add_follow_up(incident: Incident, form: Any, *, actor: Any) -> Outcome:
    follow_up = rules.add_follow_up(incident, form, actor=actor)
    return Outcome(f"Follow-up added for {follow_up.owner_repr}.")


def follow_up_done(incident: Incident, form: Any, *, actor: Any) -> Outcome:
    follow_up = rules.set_follow_up_done(incident, form, actor=actor)
    return Outcome(f"Follow-up {'done' if follow_up.done else 'reopened'}: {follow_up.text}")


ACTIONS = {
    "postmortem_save": Action(save, (WORK_INCIDENT,)),
    "postmortem_followup": Action(add_follow_up, (WORK_INCIDENT,)),
    "postmortem_followup_done": Action(follow_up_done, (WORK_INCIDENT,)),
}


# --- the page ----------------------------------------------------------------------------------


def forms(incident: Incident, user: Any) -> tuple[ActionForm, ...]:
    """Once resolved, to support and up: the sections, a new follow-up, and the follow-ups to
    tick done."""
    if not incident.is_resolved or not may(user, WORK_INCIDENT):
        return ()
    postmortem = written(incident)
    sections = tuple(
        (name, heading, getattr(postmortem, name) if postmortem else "")
        for name, heading in POSTMORTEM_SECTIONS
    )
    follow_ups = tuple(postmortem.follow_ups.all()) if postmortem else ()
    offered: list[ActionForm] = [
        PostmortemForm(
            "postmortem",
            "Write the postmortem",
            "What it did to customers, why it happened, what went well and what did not.",
            sections=sections,
        ),
        PostmortemForm(
            "postmortem_followup",
            "Add a follow-up",
            "Something to do so it does not happen again: who does it, by when.",
            owners=tuple(owner_choices()),
            follow_ups=follow_ups,
        ),
    ]
    if follow_ups:
        offered.append(
            PostmortemForm(
                "postmortem_followups",
                "Follow-ups",
                "Tick one done when it is done.",
                follow_ups=follow_ups,
            )
        )
    return tuple(offered)


def panel(incident: Incident, request: HttpRequest) -> Panel | None:
    """The postmortem as written, with the export link; on a resolved incident or one that has
    a postmortem (it stays when the incident is reopened)."""
    postmortem = written(incident)
    if postmortem is None and not incident.is_resolved:
        return None
    return Panel(
        "postmortem",
        "admin/ops/incident/panel_postmortem.html",
        {
            "postmortem": postmortem,
            "sections": postmortem.sections() if postmortem else [],
            "follow_ups": list(postmortem.follow_ups.all()) if postmortem else [],
            "export_url": reverse(f"admin:{EXPORT_URL_NAME}", args=[incident.pk]),
        },
        order=900,
    )


def export_view(request: HttpRequest, incident_id: int) -> HttpResponse:
    """The incident as a Markdown download (viewer role and up)."""
    if not may(request.user, VIEW_INCIDENT):
        raise PermissionDenied
    incident = get_object_or_404(
        Incident.objects.select_related("escalation", "owner"), pk=incident_id
    )
    response = HttpResponse(export.export_markdown(incident), content_type="text/markdown")
    response["Content-Type"] = "text/markdown; charset=utf-8"
    response["Content-Disposition"] = f'attachment; filename="{export.filename(incident)}"'
    return response


def urls(model_admin: Any) -> list[Any]:
    return [
        path(
            "<int:incident_id>/postmortem/export/",
            model_admin.admin_site.admin_view(export_view),
            name=EXPORT_URL_NAME,
        )
    ]


FEATURE = Feature(
    key="postmortem",
    heading="Postmortem",
    actions=ACTIONS,
    forms=forms,
    panel=panel,
    presence=lambda: Exists(Postmortem.objects.filter(incident=OuterRef("pk"))),
    urls=urls,
)
