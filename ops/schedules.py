"""The django-q2 schedules that follow settings (health checks, reconcile). Installed by
migrations; `manage.py install_schedules` (run by `make run`, and after changing
HEALTHCHECK_INTERVAL_MINUTES or RECONCILE_INTERVAL_MINUTES) brings them in step again."""

from __future__ import annotations

from typing import Any

from django.conf import settings

HEALTHCHECK_SCHEDULE = "cfadmin.health_checks"
RECONCILE_SCHEDULE = "cfadmin.reconcile"


def install_schedules(schedule_model: Any = None) -> None:
    if schedule_model is None:
        from django_q.models import Schedule as schedule_model
    for name, func, minutes in (
        (HEALTHCHECK_SCHEDULE, "ops.tasks.run_health_checks_task", "HEALTHCHECK_INTERVAL_MINUTES"),
        (RECONCILE_SCHEDULE, "stacks.tasks.reconcile_task", "RECONCILE_INTERVAL_MINUTES"),
    ):
        schedule_model.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": "I",  # every `minutes`
                "minutes": getattr(settings, minutes),
                "repeats": -1,
            },
        )
