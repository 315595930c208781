"""Who may do what with stacks: the permission names the admin checks, and the rules that go
beyond one permission (retrying a delete, cancelling an operation)."""

from __future__ import annotations

from typing import Any

from cfadmin.permissions import may
from stacks.choices import OPERATION_PERMISSIONS, OperationKind

DEPLOY = "stacks.deploy_stack"
DRY_RUN = "stacks.dry_run_stack"
RESTART = "stacks.restart_stack"
STOP = "stacks.stop_stack"
START = "stacks.start_stack"
REDEPLOY = "stacks.redeploy_stack"
ROTATE_SECRETS = "stacks.rotate_stack_secrets"
# Deleting a stack destroys its data: the admin group's own permission.
DELETE = "stacks.delete_stack"
RECONCILE = "stacks.reconcile_stacks"
# Containment (issue 15): stop, isolate and release stacks, from a stack or an incident.
CONTAIN = "stacks.contain_stack"


def may_retry(user: Any, operation: Any) -> bool:
    """Retrying a failed operation needs the deploy permission; retrying a delete also needs
    the admin role's delete permission (it destroys the stack's data)."""
    if not may(user, DEPLOY):
        return False
    return operation is None or operation.kind != OperationKind.DELETE or may(user, DELETE)


def may_cancel(user: Any, operation: Any) -> bool:
    """Who may request an operation of this kind may cancel it (a delete: the admin role)."""
    return may(user, OPERATION_PERMISSIONS[operation.kind])


def may_reconcile(user: Any) -> bool:
    """Running reconcile and its repairs."""
    return may(user, RECONCILE)
