"""The four staff roles of DESIGN.md and the permissions each one holds.

Each role includes the one before it. Installed by a data migration (ops/migrations) and kept
in step by `sync_roles()`, which later migrations call again when they add permissions.
"""

from __future__ import annotations

from typing import Any

VIEWER = "viewer"
SUPPORT = "support"
OPERATOR = "operator"
ADMIN = "admin"

_VIEW = [
    "tenants.view_tenant",
    "stacks.view_stack",
    "stacks.view_stackdomain",
    "stacks.view_stacksecret",
    "stacks.view_operation",
    "stacks.view_operationstep",
    "stacks.view_reconcilerun",
    "cfadmin.view_auditevent",
]
_SUPPORT = [
    "stacks.dry_run_stack",
]
_OPERATE = [
    "tenants.add_tenant",
    "tenants.change_tenant",
    "stacks.add_stack",
    "stacks.change_stack",
    "stacks.add_stackdomain",
    "stacks.change_stackdomain",
    "stacks.delete_stackdomain",
    "stacks.add_stacksecret",
    "stacks.change_stacksecret",
    "stacks.delete_stacksecret",
    "stacks.deploy_stack",
    "stacks.restart_stack",
    "stacks.stop_stack",
    "stacks.start_stack",
    "stacks.redeploy_stack",
    "stacks.rotate_stack_secrets",
    "stacks.reconcile_stacks",
]
_OPS_VIEW = [
    "ops.view_healthcheckresult",
    "ops.view_outage",
    "ops.view_procedure",
    "ops.view_procedurestep",
    "ops.view_checklistrun",
    "ops.view_checklistitem",
    "ops.view_escalationcontact",
    "ops.view_incident",
    "ops.view_incidentevent",
]
_OPS_SUPPORT = [
    "ops.add_checklistrun",
    "ops.change_checklistrun",
    "ops.change_checklistitem",
    "ops.run_healthcheck",
    "ops.add_incident",
    "ops.change_incident",
]
_OPS_ADMINISTER = [
    "ops.add_procedure",
    "ops.change_procedure",
    "ops.add_procedurestep",
    "ops.change_procedurestep",
    "ops.delete_procedurestep",
    "ops.add_escalationcontact",
    "ops.change_escalationcontact",
    "ops.delete_escalationcontact",
]
_ADMINISTER = [
    "stacks.delete_stack",
    "tenants.delete_tenant",
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "auth.view_group",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    VIEWER: _VIEW + _OPS_VIEW,
    SUPPORT: _VIEW + _OPS_VIEW + _SUPPORT + _OPS_SUPPORT,
    OPERATOR: _VIEW + _OPS_VIEW + _SUPPORT + _OPS_SUPPORT + _OPERATE,
    ADMIN: _VIEW + _OPS_VIEW + _SUPPORT + _OPS_SUPPORT + _OPERATE + _ADMINISTER + _OPS_ADMINISTER,
}


def sync_roles(apps: Any, *, strict: bool = True) -> None:
    """Create the groups and set their permissions exactly to ROLE_PERMISSIONS.

    `apps` is a migration's app registry (or django.apps.apps). Permissions of models whose
    migrations have not run yet are created first, as `migrate` would only do at its end.
    An early migration passes strict=False: permissions of models it predates are skipped
    (the migration that adds those models syncs again, strictly).
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        # create_permissions skips apps whose models_module is None (as in a migration's
        # registry); set it for the call, and put back what was there.
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = original

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in ROLE_PERMISSIONS.items():
        wanted = set()
        for name in names:
            app_label, codename = name.split(".")
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is None:
                if strict:
                    raise LookupError(f"role {role}: permission {name} does not exist")
                continue
            wanted.add(permission)
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(wanted)
