"""The schedules ops runs: the health checks, every HEALTHCHECK_INTERVAL_MINUTES, and the
daily pruning of health data past its retention (ops/retention.py)."""

from cfadmin.schedules import ScheduleSpec

HEALTHCHECK_SCHEDULE = "cfadmin.health_checks"
HEALTH_PRUNE_SCHEDULE = "cfadmin.prune_health_data"
DAILY = 24 * 60

SCHEDULES = (
    ScheduleSpec(
        HEALTHCHECK_SCHEDULE, "ops.tasks.run_health_checks_task", "HEALTHCHECK_INTERVAL_MINUTES"
    ),
    ScheduleSpec(HEALTH_PRUNE_SCHEDULE, "ops.tasks.prune_health_data_task", DAILY),
)
