"""django-q2 tasks of the ops app."""

from __future__ import annotations

from typing import Any

from ops.health import run_and_record


def run_health_checks_task() -> dict[str, Any]:
    return run_and_record()


def run_checklist_probes_task(run_id: int) -> int:
    from ops.checklists import run_probes
    from ops.models import ChecklistRun

    return run_probes(ChecklistRun.objects.get(pk=run_id))
