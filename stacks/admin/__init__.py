"""The stacks app in the admin: stacks (with their operations and template pages), operations,
tenants with their stacks, and Stacks > Reconcile. Importing the modules registers them."""

from stacks.admin import reconcile, stacks, tenants  # noqa: F401  (registers the ModelAdmins)
from stacks.admin.stacks import OperationAdmin, StackAdmin
from stacks.admin.tenants import TenantWithStacksAdmin

__all__ = ["OperationAdmin", "StackAdmin", "TenantWithStacksAdmin"]
