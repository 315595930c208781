"""When a window's checks run: the schedule (every minute) runs the before-checks
MAINTENANCE_BEFORE_CHECKS_MINUTES before the window starts (the runbook backs up and records
the version before the update; a window planned later than that gets them at once, up to its
end), the after-checks once it ends and the summary a day later, each once (claimed by a
conditional UPDATE, so two workers never run one twice); a person's "Run before-checks" /
"Run after-checks" queues a job that runs them again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone

from cfadmin import audit
from cfadmin.jobs import enqueue
from cfadmin.models import AuditAction
from ops.maintenance import checks
from ops.maintenance.summary import MONITORED, summarise
from ops.models import MaintenanceWindow

SCHEDULE_ACTOR = "schedule:maintenance-checks"
# A window whose end is longer ago than this when the schedule first sees it (made after the
# fact, or the worker was down) gets no automatic after-checks: the comparison would mislead.
AFTER_CHECKS_GRACE = timedelta(hours=6)
SUMMARY_GRACE = timedelta(days=7)
KINDS = (checks.BEFORE, checks.AFTER)


def request_checks(window: MaintenanceWindow, kind: str, *, actor: Any) -> None:
    """Queue the window's before- or after-checks (after the commit), audited."""
    if kind not in KINDS:
        raise ValueError(f"kind: one of {', '.join(KINDS)}")
    audit.record(
        actor=actor,
        action=AuditAction.OPERATION,
        target=window,
        message=f"Maintenance {kind}-checks requested",
    )
    enqueue(
        "ops.maintenance.jobs.run_checks_task",
        window.pk,
        kind,
        getattr(actor, "pk", None),
        task_name=f"maintenance-{kind}-checks-{window.pk}",
    )


def run_checks_task(window_id: int, kind: str, actor_id: int | None) -> bool:
    """The job behind the buttons: run the checks (again)."""
    window = MaintenanceWindow.objects.filter(pk=window_id).first()
    if window is None:
        return False
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    run = checks.run_before if kind == checks.BEFORE else checks.run_after
    run(window, actor)
    return True


def before_lead() -> timedelta:
    """How long before a window's start its before-checks run."""
    return timedelta(minutes=max(0, int(settings.MAINTENANCE_BEFORE_CHECKS_MINUTES)))


def _claim(window_id: int, field: str, now: datetime) -> bool:
    return bool(
        MaintenanceWindow.objects.filter(pk=window_id, **{f"{field}__isnull": True}).update(
            **{field: now}
        )
    )


def run_due(
    now: datetime | None = None, *, coolify: Any = None, pocketbase: Any = None
) -> dict[str, int]:
    """Run every check that is due (tests pass the clients and a clock); returns counts."""
    now = now or timezone.now()
    windows = MaintenanceWindow.objects.filter(cancelled_at__isnull=True)
    done = {"before": 0, "after": 0, "summary": 0}
    for window in windows.filter(
        before_checked_at__isnull=True, starts_at__lte=now + before_lead(), ends_at__gt=now
    ):
        if _claim(window.pk, "before_checked_at", now):
            checks.run_before(
                window, SCHEDULE_ACTOR, coolify=coolify, pocketbase=pocketbase, now=now
            )
            done["before"] += 1
    for window in windows.filter(
        after_checked_at__isnull=True, ends_at__lte=now, ends_at__gt=now - AFTER_CHECKS_GRACE
    ):
        if _claim(window.pk, "after_checked_at", now):
            checks.run_after(window, SCHEDULE_ACTOR, coolify=coolify, now=now)
            done["after"] += 1
    summary_due = windows.filter(summarised_at__isnull=True, ends_at__gt=now - SUMMARY_GRACE)
    for window in summary_due.filter(ends_at__lte=now - MONITORED).order_by(F("ends_at").asc()):
        if _claim(window.pk, "summarised_at", now):
            summarise(window, SCHEDULE_ACTOR, now=now)
            done["summary"] += 1
    return done


def run_due_task() -> dict[str, int]:
    """The schedule's entry point (ops/schedules.py)."""
    return run_due()
