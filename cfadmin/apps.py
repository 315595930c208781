"""cfadmin's own app: the audit trail, security, and the app contract every app follows (each
declares its `schedules` and `role_permissions` on its AppConfig; one step installs them)."""

from typing import Any

from django.apps import AppConfig

from cfadmin.roles import ADMIN, VIEWER
from cfadmin.schedules import SCHEDULES


def install_app_declarations(sender: Any, **kwargs: Any) -> None:
    """After every migrate: every app's roles and schedules, in one step. Not after `flush`
    (it sends post_migrate without a plan): emptying a database is not installing one."""
    if kwargs.get("plan") is None:
        return
    from django.apps import apps as django_apps

    from cfadmin.roles import sync_roles
    from cfadmin.schedules import install_schedules

    sync_roles(django_apps, strict=True)
    install_schedules()


class CfadminConfig(AppConfig):
    name = "cfadmin"
    verbose_name = "Audit"
    default_auto_field = "django.db.models.BigAutoField"
    schedules = SCHEDULES
    role_permissions = {
        VIEWER: ["cfadmin.view_auditevent"],
        # The admin role manages staff users (cfadmin's user admin).
        ADMIN: ["auth.view_user", "auth.add_user", "auth.change_user", "auth.view_group"],
    }

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_migrate

        from cfadmin import checks  # noqa: F401  (registers the system checks)
        from cfadmin.security import idle_timeout, login_events, user_audit

        login_events.connect()
        user_audit.connect()
        user_logged_in.connect(idle_timeout.mark_login, dispatch_uid="cfadmin.session_clock")
        # Sent once per app: run once, for cfadmin's (the lowest app; every table exists).
        post_migrate.connect(
            install_app_declarations, sender=self, dispatch_uid="cfadmin.app_declarations"
        )
