"""Provisioning: the operation runner and its resumable steps against Coolify and PocketBase,
and the recovery of operations whose task or worker was lost.

Every step first looks on the remote side for its own result, so running an interrupted
operation again resumes it and never makes a second project or service. Clients come in as
arguments (tests pass their own, tests/fakes.py); nothing here knows the admin. The client
setup and status cache live in `stacks.remote`, re-exported here for existing callers.
"""

from stacks.provisioning.outcomes import (
    Outcome,
    StepFailed,
    already,
    deferred,
    done,
    hint_for,
    skipped,
)
from stacks.provisioning.pocketbase_steps import settle_stack
from stacks.provisioning.recovery import (
    recover_stale_operations,
    run_maintenance,
    start_worker_maintenance,
)
from stacks.provisioning.runner import WORKING_STATUS, OperationRunner, run_operation
from stacks.remote import (
    Remote,
    StatusRead,
    get_coolify,
    get_pocketbase,
    get_remote,
    service_statuses,
)

__all__ = [
    "WORKING_STATUS",
    "OperationRunner",
    "Outcome",
    "Remote",
    "StatusRead",
    "StepFailed",
    "already",
    "deferred",
    "done",
    "get_coolify",
    "get_pocketbase",
    "get_remote",
    "hint_for",
    "recover_stale_operations",
    "run_maintenance",
    "run_operation",
    "service_statuses",
    "settle_stack",
    "skipped",
    "start_worker_maintenance",
]
