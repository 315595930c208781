"""The schedules stacks runs: reconcile (its interval follows settings), and recovery of stuck
operations, the PocketBase outbox and the dispatch of background operations every minute, the
shortest a schedule repeats (each worker process also runs recovery and the outbox at its start
and every PROVISION_RECOVERY_INTERVAL; the dispatch also runs after each operation ends)."""

from cfadmin.schedules import ScheduleSpec

RECONCILE_SCHEDULE = "cfadmin.reconcile"
RECOVERY_SCHEDULE = "cfadmin.recover_stale_operations"
OUTBOX_SCHEDULE = "cfadmin.drain_pocketbase_outbox"
DISPATCH_SCHEDULE = "cfadmin.dispatch_background_operations"

SCHEDULES = (
    ScheduleSpec(RECOVERY_SCHEDULE, "stacks.tasks.recover_stale_operations_task", 1),
    ScheduleSpec(OUTBOX_SCHEDULE, "stacks.tasks.drain_pocketbase_outbox_task", 1),
    ScheduleSpec(RECONCILE_SCHEDULE, "stacks.tasks.reconcile_task", "RECONCILE_INTERVAL_MINUTES"),
    ScheduleSpec(DISPATCH_SCHEDULE, "stacks.services.dispatch.dispatch_task", 1),
)
