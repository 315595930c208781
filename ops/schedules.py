"""The schedule ops runs: the health checks, every HEALTHCHECK_INTERVAL_MINUTES."""

from cfadmin.schedules import ScheduleSpec

HEALTHCHECK_SCHEDULE = "cfadmin.health_checks"

SCHEDULES = (
    ScheduleSpec(
        HEALTHCHECK_SCHEDULE, "ops.tasks.run_health_checks_task", "HEALTHCHECK_INTERVAL_MINUTES"
    ),
)
