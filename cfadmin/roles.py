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
