"""The four staff roles of DESIGN.md. Each app declares the permissions its models give each
role on its AppConfig (`role_permissions`); each role includes the one before it. `sync_roles()`
sets the groups to exactly that after every `migrate` (post_migrate, cfadmin/apps.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

VIEWER = "viewer"
SUPPORT = "support"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, SUPPORT, OPERATOR, ADMIN)  # each includes the one before
# What each role's members may do beyond the role before it, as the user and 403 pages say it.
ROLE_SUMMARIES = {
    VIEWER: "can read everything",
    SUPPORT: "can also preview deploys, run checklists and health checks, and work incidents",
    OPERATOR: "can also deploy, restart, stop and change stacks and tenants, and reconcile",
    ADMIN: "can also delete stacks and tenants, and manage staff users, runbooks and "
    "escalation contacts",
}


def role_permissions(app_configs: Iterable[Any] | None = None) -> dict[str, list[str]]:
    """Each role's permissions ("app_label.codename"), gathered from every app's AppConfig."""
    from django.apps import apps as django_apps

    configs = list(django_apps.get_app_configs() if app_configs is None else app_configs)
    granted: list[str] = []
    roles: dict[str, list[str]] = {}
    for role in ROLES:
        for config in configs:
            granted += [p for p in getattr(config, "role_permissions", {}).get(role, ())]
        roles[role] = list(dict.fromkeys(granted))
    return roles


def sync_roles(apps: Any, *, strict: bool = True) -> None:
    """Create the groups and set their permissions exactly to role_permissions().

    `apps` is the app registry whose permissions are created first (post_migrate runs this
    before every app's own create_permissions has run). strict: a declared permission that
    does not exist is an error (a typo in an AppConfig), not silently skipped.
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
    for role, names in role_permissions().items():
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


def role_of_permission(permission: str) -> str | None:
    """The lowest role that holds `permission` ("app_label.codename"); None if no role does
    (superusers only)."""
    for role, names in role_permissions().items():
        if permission in names:
            return role
    return None


def holds_role(user: Any, role: str) -> bool:
    """Whether `user` holds every permission of `role` (superusers hold every role), whatever
    groups gave them."""
    if not getattr(user, "is_active", False):
        return False
    return bool(user.is_superuser or user.has_perms(role_permissions()[role]))


def role_names(group_names: Iterable[str]) -> list[str]:
    """The role groups among `group_names`, lowest role first (other groups are left out)."""
    names = set(group_names)
    return [role for role in ROLES if role in names]


def assign_role(user: Any, role: str) -> None:
    """Make `role` the user's one role group ("" removes every role group); other groups stay.
    A role is for the console, so it also gives staff status. The caller audits."""
    from django.contrib.auth.models import Group

    if role and role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    user.groups.remove(*Group.objects.filter(name__in=ROLES).exclude(name=role))
    if role:
        user.groups.add(Group.objects.get(name=role))
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
