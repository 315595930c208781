"""The stacks app's models, one module per concern: the stack, its domains and secrets, its
operations and their steps, the PocketBase outbox, the shared remote snapshot, reconcile runs."""

from stacks.models import kept_volumes  # noqa: F401  (registers its models)
from stacks.models.domain import StackDomain
from stacks.models.operation import Operation, OperationQuerySet, OperationStep
from stacks.models.outbox import PocketBaseOutboxEntry, PocketBaseOutboxQuerySet
from stacks.models.reconcile_run import ReconcileRun
from stacks.models.secret import StackSecret
from stacks.models.snapshot import RemoteSnapshot
from stacks.models.stack import (
    InvalidTransition,
    Stack,
    StackQuerySet,
    current_template_version,
    stack_name_taken_error,
)
from stacks.models.template_release import TemplateRelease

__all__ = [
    "InvalidTransition",
    "Operation",
    "OperationQuerySet",
    "OperationStep",
    "PocketBaseOutboxEntry",
    "PocketBaseOutboxQuerySet",
    "ReconcileRun",
    "RemoteSnapshot",
    "Stack",
    "StackDomain",
    "StackQuerySet",
    "StackSecret",
    "TemplateRelease",
    "current_template_version",
    "stack_name_taken_error",
]
