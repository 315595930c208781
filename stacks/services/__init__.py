"""Workflows over stack rows that admin actions and commands call: operations (request, retry,
cancel), the runbook's deploy, tenants, secrets. Each one validates, audits and queues after
the commit; admin classes only report what they return or raise."""

from stacks.services.deploy import DeployRefused, deploy_stack
from stacks.services.operations import (
    OperationRefused,
    cancel_operation,
    cancellation_refusal,
    enqueue_operation,
    request_operation,
    request_operations,
    retry_operation,
    stack_status_after_cancel,
)
from stacks.services.secrets import rotate_encryption_keys, rotate_stack_secrets, store_secrets
from stacks.services.tenants import create_tenant, tenant_stack_listing

__all__ = [
    "DeployRefused",
    "OperationRefused",
    "cancel_operation",
    "cancellation_refusal",
    "create_tenant",
    "deploy_stack",
    "enqueue_operation",
    "request_operation",
    "request_operations",
    "retry_operation",
    "rotate_encryption_keys",
    "rotate_stack_secrets",
    "stack_status_after_cancel",
    "store_secrets",
    "tenant_stack_listing",
]
