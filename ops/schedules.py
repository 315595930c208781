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
    schedule_model.objects.update_or_create(
        name=HEALTHCHECK_SCHEDULE,
        defaults={
            "func": "ops.tasks.run_health_checks_task",
            "schedule_type": "I",
            "minutes": settings.HEALTHCHECK_INTERVAL_MINUTES,
            "repeats": -1,
        },
    )
    schedule_model.objects.update_or_create(
        name=RECONCILE_SCHEDULE,
        defaults={
            "func": "stacks.tasks.reconcile_task",
            "schedule_type": "I",
            "minutes": settings.RECONCILE_INTERVAL_MINUTES,
            "repeats": -1,
        },
    )
