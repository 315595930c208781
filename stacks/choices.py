"""The choices of the stacks app (statuses, kinds, drift and repairs) and the rules that belong
to them: allowed transitions and operations, status badges, which repairs are destructive."""

from django.db import models


class StackStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DEPLOYING = "deploying", "Deploying"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    ERROR = "error", "Error"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"

    @property
    def badge_class(self) -> str:
        """CSS classes of this status's badge; the colours are in cfadmin/static/cfadmin/
        cfadmin.css (the CSP allows no style="")."""
        return f"cf-status cf-status-{self.value}"

    @property
    def needs_attention(self) -> bool:
        """Error or stopped: the tenant list counts these stacks as needing a look."""
        return self in (StackStatus.ERROR, StackStatus.STOPPED)


# The status machine of DESIGN.md. `error` can be left by retrying (deploying) or deleting;
# restart/redeploy of a running or stopped stack goes through deploying.
STACK_TRANSITIONS: dict[str, frozenset[str]] = {
    StackStatus.PENDING: frozenset({StackStatus.DEPLOYING, StackStatus.DELETING}),
    StackStatus.DEPLOYING: frozenset({StackStatus.RUNNING, StackStatus.ERROR}),
    StackStatus.RUNNING: frozenset(
        {StackStatus.STOPPED, StackStatus.DEPLOYING, StackStatus.ERROR, StackStatus.DELETING}
    ),
    StackStatus.STOPPED: frozenset(
        {StackStatus.RUNNING, StackStatus.DEPLOYING, StackStatus.ERROR, StackStatus.DELETING}
    ),
    StackStatus.ERROR: frozenset(
        {StackStatus.DEPLOYING, StackStatus.DELETING, StackStatus.RUNNING, StackStatus.STOPPED}
    ),
    StackStatus.DELETING: frozenset({StackStatus.DELETED, StackStatus.ERROR}),
    StackStatus.DELETED: frozenset(),
}


class OperationKind(models.TextChoices):
    DEPLOY = "deploy", "Deploy"
    DELETE = "delete", "Delete"
    RESTART = "restart", "Restart"
    STOP = "stop", "Stop"
    START = "start", "Start"
    REDEPLOY = "redeploy", "Redeploy"
    ROTATE_SECRETS = "rotate_secrets", "Rotate secrets"
    # Containment (issue 15): take the domains off in Coolify and stop; release undoes it.
    ISOLATE = "isolate", "Isolate"
    RELEASE = "release", "Release"


class Containment(models.TextChoices):
    """Whether a stack is held out of service on purpose (an incident's containment)."""

    NONE = "", "Not contained"
    ISOLATED = "isolated", "Isolated"

    @property
    def badge_class(self) -> str:
        """CSS classes of the containment badge (cfadmin/static/cfadmin/containment.css)."""
        return f"cf-contained cf-contained-{self.value or 'none'}"


# What an isolated stack refuses until it is released: each would start it again (with its
# domains, as DEPLOY/REDEPLOY push them) behind the back of whoever contained it.
REFUSED_WHILE_ISOLATED = frozenset(
    {
        OperationKind.DEPLOY,
        OperationKind.START,
        OperationKind.RESTART,
        OperationKind.REDEPLOY,
        OperationKind.ROTATE_SECRETS,
    }
)


def containment_refusal(containment: str, kind: str) -> str:
    """Why a stack in this containment refuses an operation of this kind ("" when it may run):
    an isolated stack runs nothing that starts it; only an isolated one can be released."""
    isolated = containment == Containment.ISOLATED
    if isolated and kind in REFUSED_WHILE_ISOLATED:
        return (
            f"the stack is isolated (contained): {OperationKind(kind).label.lower()} would start "
            "it again, so it is refused until the stack is released; stop and delete are allowed"
        )
    if not isolated and kind == OperationKind.RELEASE:
        return "the stack is not isolated: there is nothing to release"
    return ""


class OperationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


IN_FLIGHT_OPERATION_STATUSES = (OperationStatus.QUEUED, OperationStatus.RUNNING)

# The permission that requests an operation of each kind; cancelling a queued one needs the
# same (a queued delete is the admin role's to cancel).
OPERATION_PERMISSIONS: dict[str, str] = {
    OperationKind.DEPLOY: "stacks.deploy_stack",
    OperationKind.REDEPLOY: "stacks.redeploy_stack",
    OperationKind.RESTART: "stacks.restart_stack",
    OperationKind.STOP: "stacks.stop_stack",
    OperationKind.START: "stacks.start_stack",
    OperationKind.ROTATE_SECRETS: "stacks.rotate_stack_secrets",
    OperationKind.DELETE: "stacks.delete_stack",
    OperationKind.ISOLATE: "stacks.contain_stack",
    OperationKind.RELEASE: "stacks.contain_stack",
}


class StepOutcome(models.TextChoices):
    DONE = "done", "Done"
    ALREADY_DONE = "already_done", "Already done (found on the remote side)"
    SKIPPED = "skipped", "Skipped"
    # The work is recorded and will be finished in the background (PocketBase unreachable).
    DEFERRED = "deferred", "Queued for later (retried in the background)"
    FAILED = "failed", "Failed"


# Which operations a stack accepts in each status. `deploying`/`deleting` accept a new attempt
# of the same work: a stack left there by a crashed attempt must not be stuck.
ALLOWED_OPERATIONS: dict[str, frozenset[str]] = {
    StackStatus.PENDING: frozenset({OperationKind.DEPLOY, OperationKind.DELETE}),
    StackStatus.DEPLOYING: frozenset({OperationKind.DEPLOY, OperationKind.DELETE}),
    StackStatus.RUNNING: frozenset(
        {
            OperationKind.RESTART,
            OperationKind.STOP,
            OperationKind.REDEPLOY,
            OperationKind.ROTATE_SECRETS,
            OperationKind.DELETE,
            OperationKind.ISOLATE,
            OperationKind.RELEASE,
        }
    ),
    StackStatus.STOPPED: frozenset(
        {
            OperationKind.START,
            OperationKind.ISOLATE,
            OperationKind.RELEASE,
            OperationKind.REDEPLOY,
            OperationKind.ROTATE_SECRETS,
            OperationKind.DELETE,
        }
    ),
    StackStatus.ERROR: frozenset(
        {
            OperationKind.DEPLOY,
            OperationKind.REDEPLOY,
            OperationKind.RESTART,
            OperationKind.START,
            OperationKind.STOP,
            OperationKind.ROTATE_SECRETS,
            OperationKind.DELETE,
            OperationKind.ISOLATE,
            OperationKind.RELEASE,
        }
    ),
    StackStatus.DELETING: frozenset({OperationKind.DELETE}),
    StackStatus.DELETED: frozenset(),
}


class DriftKind(models.TextChoices):
    """What reconcile can find between cfadmin, Coolify and PocketBase."""

    MISSING_SERVICE = "missing_service", "Service missing in Coolify"
    SERVICE_STATUS = "service_status", "Coolify status differs from cfadmin"
    MISSING_RECORD = "missing_record", "PocketBase record missing"
    RECORD_DIFFERS = "record_differs", "PocketBase record differs from cfadmin"
    ORPHAN_SERVICE = "orphan_service", "Coolify service unknown to cfadmin"
    ORPHAN_RECORD = "orphan_record", "PocketBase record unknown to cfadmin"


class Repair(models.TextChoices):
    """What reconcile can do about a drift; each checks the remote side again first."""

    PUSH_RECORD = "push_record", "Write cfadmin's record to PocketBase"
    TAKE_COOLIFY_STATUS = "take_coolify_status", "Take Coolify's status into cfadmin"
    MARK_ERROR = "mark_error", "Mark the stack as error"
    IMPORT = "import", "Import into cfadmin"
    DELETE_RECORD = "delete_record", "Delete the PocketBase record"

    @property
    def is_destructive(self) -> bool:
        """It destroys something: the admin asks to tick a confirmation first."""
        return self is Repair.DELETE_RECORD

    @property
    def is_safe(self) -> bool:
        """`reconcile --repair` applies it unattended: nothing is deleted or created, and
        Coolify's status (which can lag or be wrong) is taken only by a person who checked."""
        return self in (Repair.PUSH_RECORD, Repair.MARK_ERROR)


class OutboxAction(models.TextChoices):
    """What a PocketBase outbox entry does to the stack's agent_stacks record."""

    UPSERT = "upsert", "Write the record"
    DELETE = "delete", "Delete the record"


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    # A newer entry for the same record was delivered: this one's state is history.
    SUPERSEDED = "superseded", "Superseded by a newer change"
    # PocketBase refused it as it stands (400/422): retrying cannot help.
    REJECTED = "rejected", "Rejected by PocketBase"
