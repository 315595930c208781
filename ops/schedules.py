"""The django-q2 schedules cfadmin runs: health checks and reconcile (their intervals follow
settings), recovery of stuck operations and the PocketBase outbox (every minute). Installed by
migrations; `manage.py install_schedules` (run by `make run`, and after changing
HEALTHCHECK_INTERVAL_MINUTES or RECONCILE_INTERVAL_MINUTES) brings them in step again."""

from __future__ import annotations

from typing import Any

from django.conf import settings

HEALTHCHECK_SCHEDULE = "cfadmin.health_checks"
RECONCILE_SCHEDULE = "cfadmin.reconcile"
# Every minute, the shortest a schedule can repeat (django-q2's scheduler looks every 30 s);
# each worker process also runs both when it starts and every PROVISION_RECOVERY_INTERVAL.
RECOVERY_SCHEDULE = "cfadmin.recover_stale_operations"
OUTBOX_SCHEDULE = "cfadmin.drain_pocketbase_outbox"


def install_schedules(schedule_model: Any = None) -> None:
    if schedule_model is None:
        from django_q.models import Schedule as schedule_model
    for name, func, minutes in (
        (HEALTHCHECK_SCHEDULE, "ops.tasks.run_health_checks_task", "HEALTHCHECK_INTERVAL_MINUTES"),
        (RECONCILE_SCHEDULE, "stacks.tasks.reconcile_task", "RECONCILE_INTERVAL_MINUTES"),
        (RECOVERY_SCHEDULE, "stacks.tasks.recover_stale_operations_task", 1),
        (OUTBOX_SCHEDULE, "stacks.tasks.drain_pocketbase_outbox_task", 1),
    ):
        schedule_model.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": "I",  # every `minutes`
                "minutes": getattr(settings, minutes) if isinstance(minutes, str) else minutes,
                "repeats": -1,
            },
        )
