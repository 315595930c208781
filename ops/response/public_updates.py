"""The incident feature "public_updates" (issue 16): staff tell customers what is happening on
the public status page, apart from the internal notes — a form posting a public update (the
first one puts the incident on the page under a public title) and a panel listing the updates
posted, with whether and where the incident is on the page. The rules are in
ops.status_page.updates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.urls import reverse

from ops import response
from ops.incident_actions import WORK_INCIDENT, Action, ActionForm, Outcome
from ops.models import Incident, PublicStatus, PublicUpdate
from ops.permissions import ADD_PUBLIC_UPDATE, may
from ops.response import Feature, Panel
from ops.status_page import updates

# What the panel lists of the incident's public updates (the status page shows as many).
UPDATES_SHOWN = 20


@dataclass(frozen=True)
class PublicUpdateForm(ActionForm):
    """The form, with what its template shows: the statuses, the one to preselect, and the
    incident's public title (empty until it is on the page)."""

    statuses: tuple[tuple[str, str], ...] = ()
    selected: str = PublicStatus.INVESTIGATING
    public: bool = False
    public_title: str = ""


def posted(incident: Incident) -> list[PublicUpdate]:
    """The incident's newest public updates, read once per page (none when it has none)."""
    if not response.present(incident, "public_updates"):
        return []
    return response.remember(
        incident,
        "public_updates",
        lambda: list(
            PublicUpdate.objects.filter(incident=incident).order_by("-posted_at", "-id")[
                :UPDATES_SHOWN
            ]
        ),
    )


def status_page_link(incident: Incident) -> str:
    return f"{reverse('status_page')}#incident-{incident.pk}"


# --- the action (posted to admin:ops_incident_work) --------------------------------------------


def post(incident: Incident, form: Any, *, actor: Any) -> Outcome:
    update = updates.post_update(
        incident,
        form.get("status", ""),
        form.get("message", ""),
        form.get("public_title", ""),
        actor=actor,
    )
    return Outcome(
        f"Public update posted ({update.get_status_display()}): it is on the status page."
    )


def withdraw(incident: Incident, form: Any, *, actor: Any) -> Outcome:
    updates.withdraw(incident, actor=actor)
    return Outcome("Taken off the status page; a new public update puts it back.")


ACTIONS = {
    "public_update": Action(post, (WORK_INCIDENT, ADD_PUBLIC_UPDATE)),
    "public_withdraw": Action(withdraw, (WORK_INCIDENT, ADD_PUBLIC_UPDATE)),
}


# --- the page ----------------------------------------------------------------------------------


def forms(incident: Incident, user: Any) -> tuple[ActionForm, ...]:
    if not (may(user, WORK_INCIDENT) and may(user, ADD_PUBLIC_UPDATE)):
        return ()
    latest = posted(incident)
    return (
        PublicUpdateForm(
            "public_update",
            "Post a public update" if incident.public else "Put it on the status page",
            "What customers read on the public status page: no internal detail, no tenant or "
            "stack names. Internal notes never go there.",
            statuses=tuple(PublicStatus.choices),
            selected=latest[0].status if latest else PublicStatus.INVESTIGATING,
            public=incident.public,
            public_title=incident.public_title,
        ),
        *(
            (
                ActionForm(
                    "public_withdraw",
                    "Take it off the status page",
                    "Published by mistake, or nothing customers need to follow: it leaves the "
                    "page (its public updates are kept; a new one puts it back).",
                ),
            )
            if incident.public
            else ()
        ),
    )


def panel(incident: Incident, request: HttpRequest) -> Panel:
    return Panel(
        "public_updates",
        "admin/ops/incident/panel_public_updates.html",
        {
            "public": incident.public,
            "public_name": incident.public_name,
            "updates": posted(incident),
            "shown": UPDATES_SHOWN,
            "status_page_url": status_page_link(incident),
            "may_withdraw": may(request.user, WORK_INCIDENT)
            and may(request.user, ADD_PUBLIC_UPDATE),
        },
        order=800,
    )


FEATURE = Feature(
    key="public_updates",
    heading="Status page",
    actions=ACTIONS,
    forms=forms,
    panel=panel,
    presence=lambda: Exists(PublicUpdate.objects.filter(incident=OuterRef("pk"))),
)
