"""django-q2 tasks of the ops app."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from ops.health import run_and_record


def run_health_checks_task() -> dict[str, Any]:
    return run_and_record()


def prune_health_data_task() -> dict[str, int]:
    from ops.retention import prune_health_data

    return prune_health_data()


def run_checklist_probes_task(run_id: int) -> int | None:
    from ops.checklists import run_probes
    from ops.models import ChecklistRun
    from ops.probes import record_probes_ran

    run = ChecklistRun.objects.get(pk=run_id)
    started_at = timezone.now()
    ran = None
    try:
        ran = run_probes(run)
    finally:  # ends the request: "Run automatic checks" may be asked for again
        record_probes_ran(run, started_at=started_at, ran=ran)
    return ran
