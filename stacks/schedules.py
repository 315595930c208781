"""The schedules stacks runs: reconcile (its interval follows settings), and recovery of stuck
operations and the PocketBase outbox every minute, the shortest a schedule repeats (each worker
process also runs those two at its start and every PROVISION_RECOVERY_INTERVAL)."""

from cfadmin.schedules import ScheduleSpec

RECONCILE_SCHEDULE = "cfadmin.reconcile"
RECOVERY_SCHEDULE = "cfadmin.recover_stale_operations"
OUTBOX_SCHEDULE = "cfadmin.drain_pocketbase_outbox"

SCHEDULES = (
    ScheduleSpec(RECOVERY_SCHEDULE, "stacks.tasks.recover_stale_operations_task", 1),
    ScheduleSpec(OUTBOX_SCHEDULE, "stacks.tasks.drain_pocketbase_outbox_task", 1),
    ScheduleSpec(RECONCILE_SCHEDULE, "stacks.tasks.reconcile_task", "RECONCILE_INTERVAL_MINUTES"),
)
