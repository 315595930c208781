"""A maintenance window's checks, each recorded on the window and audited.

Before (MAINTENANCE_BEFORE_CHECKS_MINUTES before the start, or "Run before-checks"): Coolify's
version, a PocketBase backup taken and found in PocketBase's listing, and every live stack's
Coolify status (ids and statuses only).
After (at the end, or "Run after-checks"): the version again and the stacks that were running
before and are not now. A part that fails is recorded in `check_errors` and the others still run:
a Coolify that does not answer must not cost the backup."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.utils import timezone

from cfadmin import audit
from cfadmin.models import AuditAction
from ops.maintenance.summary import summarise
from ops.models import MaintenanceWindow
from ops.response.recovery_jobs import refresh_listing
from stacks.choices import StackStatus
from stacks.clients.coolify_status import interpret
from stacks.clients.errors import ClientError
from stacks.models import Stack

MISSING = "missing"  # a live stack whose service Coolify does not list
BEFORE, AFTER = "before", "after"
# The stopped stacks listed on the window: the count says how many there are in all.
STOPPED_LISTED = 500

__all__ = [
    "AFTER",
    "BEFORE",
    "counts_as_running",
    "run_after",
    "run_before",
    "stopped_ids",
    "summarise",
]


def backup_name(window: MaintenanceWindow, now: datetime) -> str:
    """A name PocketBase takes (`[a-z0-9_-]+.zip`) saying which window asked and when."""
    return f"cfadmin_maintenance{window.pk}_{now:%Y%m%d%H%M%S}.zip"


@contextmanager
def _client(given: Any, make: str) -> Iterator[Any]:
    """The client passed in (tests), else one for settings' service, closed after."""
    if given is not None:
        yield given
        return
    from stacks import remote

    with getattr(remote, make)() as client:
        yield client


def live_statuses(coolify: Any) -> dict[str, str]:
    """Every live stack's Coolify status by stack id (one GET /services for all of them)."""
    by_uuid = {str(s["uuid"]): str(s.get("status") or "") for s in coolify.list_services()}
    rows = (
        Stack.objects.exclude(status=StackStatus.DELETED)
        .exclude(coolify_service_uuid="")
        .values_list("pk", "coolify_service_uuid")
        .iterator(chunk_size=2000)
    )
    return {str(pk): by_uuid.get(uuid, MISSING) for pk, uuid in rows}


def counts_as_running(status: str) -> bool:
    """A stack's recorded status says its containers were up (healthy or not)."""
    return status != MISSING and interpret(status).running


def read_coolify(coolify: Any, errors: list[str]) -> tuple[str, dict[str, Any] | None]:
    """Coolify's version and every live stack's status, each "" / None when it could not be
    read (why goes into `errors`): what the before- and after-checks compare."""
    version, statuses = "", None
    with _client(coolify, "get_coolify") as client:
        try:
            version = client.version()
        except ClientError as error:
            errors.append(f"Coolify version: {error.message}")
        try:
            statuses = live_statuses(client)
        except ClientError as error:
            errors.append(f"Stack statuses: {error.message}")
    return version, statuses


def run_before(
    window: MaintenanceWindow,
    actor: Any,
    *,
    coolify: Any = None,
    pocketbase: Any = None,
    now: datetime | None = None,
) -> MaintenanceWindow:
    """Record Coolify's version, take a PocketBase backup and find it listed, and snapshot every
    live stack's status. Run again, it replaces what an earlier run recorded."""
    now = now or timezone.now()
    errors: list[str] = []
    version, statuses = read_coolify(coolify, errors)
    statuses = statuses or {}
    name, size = backup_name(window, now), None
    with _client(pocketbase, "get_pocketbase") as client:
        try:
            client.create_backup(name)
            listed = {b["key"]: b for b in refresh_listing(client)}
        except ClientError as error:
            errors.append(f"PocketBase backup {name}: {error.message}")
        else:
            if name in listed:
                size = listed[name]["size"]
            else:
                errors.append(f"PocketBase backup {name}: taken but not in PocketBase's listing")
    window.before_checked_at = now
    window.coolify_version_before = version
    window.backup_name = name if size is not None else ""
    window.backup_size = size
    window.stacks_before = statuses
    window.check_errors = {**window.check_errors, BEFORE: errors}
    window.save(
        update_fields=[
            "before_checked_at",
            "coolify_version_before",
            "backup_name",
            "backup_size",
            "stacks_before",
            "check_errors",
        ]
    )
    running = sum(counts_as_running(status) for status in statuses.values())
    _audit(
        window,
        actor,
        f"Maintenance before-checks: Coolify {version or 'unknown'}, backup "
        f"{window.backup_name or 'not taken'}, {running} of {len(statuses)} stacks running",
        {"version": version, "backup": window.backup_name, "errors": errors},
    )
    return window


def run_after(
    window: MaintenanceWindow, actor: Any, *, coolify: Any = None, now: datetime | None = None
) -> MaintenanceWindow:
    """Record Coolify's version again and the stacks running before that are not running now
    (a stack deleted meanwhile was deleted on purpose: not listed)."""
    now = now or timezone.now()
    errors: list[str] = []
    version, statuses = read_coolify(coolify, errors)
    stopped: list[dict[str, Any]] = []
    if not window.stacks_before:
        errors.append("No before-checks recorded: nothing to compare the stacks with")
    elif statuses is not None:
        stopped = [
            {"stack": int(pk), "before": before, "after": statuses[pk]}
            for pk, before in window.stacks_before.items()
            if pk in statuses and counts_as_running(before) and not counts_as_running(statuses[pk])
        ]
    window.after_checked_at = now
    window.coolify_version_after = version
    window.stopped_stacks = stopped[:STOPPED_LISTED]
    window.stopped_count = len(stopped) if statuses is not None and window.stacks_before else None
    window.check_errors = {**window.check_errors, AFTER: errors}
    window.save(
        update_fields=[
            "after_checked_at",
            "coolify_version_after",
            "stopped_stacks",
            "stopped_count",
            "check_errors",
        ]
    )
    _audit(
        window,
        actor,
        f"Maintenance after-checks: Coolify {window.coolify_version_before or '?'} → "
        f"{version or 'unknown'}, {len(stopped)} stack(s) running before are not now",
        {"version": version, "stopped": len(stopped), "errors": errors},
    )
    return window


def stopped_ids(window: MaintenanceWindow) -> list[int]:
    return [int(row["stack"]) for row in window.stopped_stacks]


def _audit(window: MaintenanceWindow, actor: Any, message: str, changes: dict[str, Any]) -> None:
    audit.record(
        actor=actor,
        action=AuditAction.OPERATION_RESULT,
        target=window,
        message=message,
        changes=changes,
    )
