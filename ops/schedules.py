"""The schedules ops runs: the health checks, every HEALTHCHECK_INTERVAL_MINUTES, the daily
pruning of health data past its retention (ops/retention.py), and every minute the advance of
mass-failure restarts (a wave starts only once the previous one is healthy) and of leaked-value
rotations (a paced batch a minute, outcomes on the timeline), and of notifications waiting
for a retry or for their contact's hours (ops/notifications/delivery.py)."""

from cfadmin.schedules import ScheduleSpec

HEALTHCHECK_SCHEDULE = "cfadmin.health_checks"
HEALTH_PRUNE_SCHEDULE = "cfadmin.prune_health_data"
RESTART_WAVES_SCHEDULE = "cfadmin.mass_failure_restart_waves"
LEAK_ROTATIONS_SCHEDULE = "cfadmin.leak_rotations"
NOTIFICATION_RETRIES_SCHEDULE = "cfadmin.notification_retries"
REESCALATION_SCHEDULE = "cfadmin.incident_reescalation"
# Maintenance windows' checks: before at the start, after at the end, the summary a day later.
MAINTENANCE_CHECKS_SCHEDULE = "cfadmin.maintenance_checks"
# Template rollouts' waves: judged, gated and requested (ops/rollouts/gate.py).
ROLLOUTS_SCHEDULE = "cfadmin.template_rollouts"
DAILY = 24 * 60

SCHEDULES = (
    ScheduleSpec(
        HEALTHCHECK_SCHEDULE, "ops.tasks.run_health_checks_task", "HEALTHCHECK_INTERVAL_MINUTES"
    ),
    ScheduleSpec(HEALTH_PRUNE_SCHEDULE, "ops.tasks.prune_health_data_task", DAILY),
    ScheduleSpec(RESTART_WAVES_SCHEDULE, "ops.response.mass_failure_waves.advance_all_task", 1),
    ScheduleSpec(LEAK_ROTATIONS_SCHEDULE, "ops.response.leaks_jobs.advance_all_task", 1),
    ScheduleSpec(REESCALATION_SCHEDULE, "ops.notifications.paging.reescalate_due_task", 1),
    ScheduleSpec(NOTIFICATION_RETRIES_SCHEDULE, "ops.notifications.delivery.send_due", 1),
    ScheduleSpec(MAINTENANCE_CHECKS_SCHEDULE, "ops.maintenance.jobs.run_due_task", 1),
    ScheduleSpec(ROLLOUTS_SCHEDULE, "ops.rollouts.jobs.advance_all_task", 1),
)
