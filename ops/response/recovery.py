"""The incident response feature "recovery" (issue 15): take a PocketBase backup from an
incident (operators), list the backups, and show which linked stacks' volumes were kept by a
delete. The queued work is ops.response.recovery_jobs; the page ops.response.recovery_views."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest
from django.urls import reverse

from ops import response
from ops.incident_actions import Action, ActionForm, Form, Outcome
from ops.models import Incident, IncidentEvent, IncidentEventKind
from ops.permissions import CHANGE_INCIDENT, VIEW_INCIDENT, may
from ops.response import Feature, Panel
from ops.response import recovery_views as views
from ops.response.recovery_jobs import request_backup, request_listing, stored_listing
from stacks import permissions as stack_permissions
from stacks.models.kept_volumes import KeptVolumes

BACKUP = "recovery_backup"
LIST = "recovery_list_backups"
# Operators and up: who works incidents and may deploy (a backup loads PocketBase).
BACKUP_PERMISSIONS = (CHANGE_INCIDENT, stack_permissions.DEPLOY)
BACKUP_FORM = ActionForm(
    "recovery_backup",
    "Take a PocketBase backup",
    "PocketBase zips its data now (the stacks' records); the backup is listed with its size, "
    "and the timeline says when it is written.",
)


def may_back_up(user: Any) -> bool:
    return all(may(user, perm) for perm in BACKUP_PERMISSIONS)


def take_backup(incident: Incident, form: Form, *, actor: Any) -> Outcome:
    name = request_backup(incident, actor=actor)
    return Outcome(
        f"PocketBase backup {name} queued; the timeline says when it is written.",
        redirect=reverse(f"admin:{views.BACKUPS_URL}", args=[incident.pk]),
    )


def list_backups(incident: Incident, form: Form, *, actor: Any) -> Outcome:
    request_listing(incident, actor=actor)
    return Outcome(
        "Reading PocketBase's backups; reload this page in a moment.",
        redirect=reverse(f"admin:{views.BACKUPS_URL}", args=[incident.pk]),
    )


def forms(incident: Incident, user: Any) -> tuple[ActionForm, ...]:
    return (BACKUP_FORM,) if may_back_up(user) else ()


def panel(incident: Incident, request: HttpRequest) -> Panel | None:
    """The newest backup known and the kept volumes of the incident's deleted stacks; shown
    once the incident has either (a backup taken from it, a linked stack's kept volumes)."""
    if not may(request.user, VIEW_INCIDENT) or not response.present(incident, "recovery"):
        return None
    backups, fetched_at = stored_listing()
    kept = list(
        KeptVolumes.objects.filter(stack__incidents=incident).select_related(
            "stack__tenant", "reused_by"
        )
    )
    return Panel(
        "recovery",
        "admin/ops/incident/panel_recovery.html",
        {"newest": backups[0] if backups else None, "fetched_at": fetched_at, "kept": kept},
        order=60,
    )


FEATURE = Feature(
    key="recovery",
    heading="Data recovery",
    actions={
        BACKUP: Action(take_backup, BACKUP_PERMISSIONS),
        LIST: Action(list_backups, BACKUP_PERMISSIONS),
    },
    forms=forms,
    panel=panel,
    presence=lambda: (
        Q(Exists(KeptVolumes.objects.filter(stack__incidents=OuterRef("pk"))))
        | Q(
            Exists(
                IncidentEvent.objects.filter(
                    incident=OuterRef("pk"), kind=IncidentEventKind.RECOVERY
                )
            )
        )
    ),
    urls=views.urls,
)
