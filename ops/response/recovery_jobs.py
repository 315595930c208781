"""The queued PocketBase backup work of an incident's data recovery: take a backup, refresh the
stored list of backups; each result goes to the incident's timeline and the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from cfadmin import audit
from cfadmin.jobs import enqueue
from cfadmin.models import AuditAction
from ops import incidents
from ops.models import Incident, IncidentEventKind
from stacks.clients.errors import ClientError
from stacks.models import RemoteSnapshot

# The last backup listing a worker read, shown by the backups page (no PocketBase call in a
# request): stacks' shared remote-read row.
SNAPSHOT = "pocketbase-backups"


def backup_name(incident: Incident) -> str:
    """A name PocketBase takes (`[a-z0-9_-]+.zip`) saying which incident asked and when."""
    return f"cfadmin_incident{incident.pk}_{timezone.now():%Y%m%d%H%M%S}.zip"


def request_backup(incident: Incident, *, actor: Any) -> str:
    """Queue a PocketBase backup for the incident (after the commit); returns its name."""
    name = backup_name(incident)
    incidents.log_action(
        incident,
        IncidentEventKind.RECOVERY,
        f"PocketBase backup {name} requested",
        actor=actor,
        action=AuditAction.OPERATION,
        changes={"backup": name},
    )
    enqueue(
        "ops.response.recovery_jobs.take_backup",
        incident.pk,
        name,
        getattr(actor, "pk", None),
        task_name=f"pocketbase-backup-{incident.pk}",
    )
    return name


def request_listing(incident: Incident, *, actor: Any) -> None:
    audit.record(
        actor=actor,
        action=AuditAction.OPERATION,
        target=incident,
        message="PocketBase backup list refresh requested",
    )
    enqueue("ops.response.recovery_jobs.refresh_listing", task_name="pocketbase-backup-list")


def stored_listing() -> tuple[list[dict[str, Any]], Any]:
    """The stored backups (newest first) and when they were read (None: never)."""
    row = RemoteSnapshot.objects.filter(name=SNAPSHOT).first()
    if row is None:
        return [], None
    return list((row.data or {}).get("backups", [])), row.fetched_at


def refresh_listing(pocketbase: Any = None) -> list[dict[str, Any]]:
    """Read PocketBase's backups and store them for the page (a job; tests pass a client)."""
    if pocketbase is None:
        with _pocketbase() as client:
            return refresh_listing(client)
    backups = pocketbase.list_backups()
    RemoteSnapshot.objects.update_or_create(
        name=SNAPSHOT, defaults={"data": {"backups": backups}, "fetched_at": timezone.now()}
    )
    return backups


def take_backup(incident_id: int, name: str, actor_id: int | None, pocketbase: Any = None) -> bool:
    """The job: create the backup, store the new listing, tell the timeline how it went."""
    if pocketbase is None:
        with _pocketbase() as client:
            return take_backup(incident_id, name, actor_id, client)
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return False
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    client = pocketbase
    try:
        client.create_backup(name)
        backups = refresh_listing(client)
    except ClientError as error:
        message = f"PocketBase backup {name} failed: {error.message}"
        ok = False
    else:
        made = next((b for b in backups if b["key"] == name), None)
        size = f", {made['size']} bytes" if made else ""
        message = f"PocketBase backup {name} taken{size}"
        ok = True
    incidents.log_action(
        incident,
        IncidentEventKind.RECOVERY,
        message,
        actor=actor,
        action=AuditAction.OPERATION_RESULT,
        changes={"backup": name, "ok": ok},
    )
    return ok


def _pocketbase() -> Any:
    from stacks.remote import get_pocketbase

    return get_pocketbase()
