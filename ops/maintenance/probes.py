"""The checklist probes a maintenance window's checks answer, for the monthly Coolify update's
steps "Backup critical data", "Health check: verify all stacks operational" and "Monitor: 24h
post-update monitoring". Each reads the window linked to the run (the newest, if several)."""

from __future__ import annotations

from typing import Any

from ops.models import ChecklistRun, MaintenanceWindow

ProbeResult = tuple[bool | None, dict[str, Any]]


def _window(run: ChecklistRun) -> MaintenanceWindow:
    window = (
        MaintenanceWindow.objects.filter(checklist_run=run.pk, cancelled_at__isnull=True)
        .order_by("-starts_at", "-id")
        .first()
    )
    if window is None:
        raise LookupError("no maintenance window is planned for this run (Plan maintenance window)")
    return window


def _facts(window: MaintenanceWindow) -> dict[str, Any]:
    return {"window": str(window), "window_id": window.pk}


def backup_taken(run: ChecklistRun) -> ProbeResult:
    """Passed when the window's before-checks took a PocketBase backup PocketBase listed."""
    window = _window(run)
    if window.before_checked_at is None:
        return False, {**_facts(window), "error": "the before-checks have not run yet"}
    if not window.backup_taken:
        errors = window.check_errors.get("before", [])
        return False, {**_facts(window), "error": "no backup was taken", "errors": errors}
    return True, {
        **_facts(window),
        "backup": window.backup_name,
        "size": window.backup_size,
        "taken_at": window.before_checked_at.isoformat(),
    }


def stacks_running(run: ChecklistRun) -> ProbeResult:
    """Passed when the after-checks found every stack that ran before the window running."""
    window = _window(run)
    if window.after_checked_at is None or window.stopped_count is None:
        errors = window.check_errors.get("after", [])
        return False, {**_facts(window), "error": "no after-checks compared yet", "errors": errors}
    if window.stopped_count:
        return False, {
            **_facts(window),
            "error": f"{window.stopped_count} stack(s) running before are not running now",
            "stopped": [row["stack"] for row in window.stopped_stacks[:20]],
        }
    return True, {**_facts(window), "compared": len(window.stacks_before)}


def monitored(run: ChecklistRun) -> ProbeResult:
    """Passed when the day after the window is summarised without an outage."""
    window = _window(run)
    if window.summarised_at is None:
        return False, {**_facts(window), "error": "the 24h summary is not there yet"}
    outages = window.summary_outages
    if outages:
        return False, {**_facts(window), "error": f"{outages} outage(s) in the 24h after"}
    return True, {**_facts(window), "summarised_at": window.summarised_at.isoformat()}
