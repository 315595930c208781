from django.apps import AppConfig


class CfadminConfig(AppConfig):
    name = "cfadmin"
    verbose_name = "Audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from cfadmin import checks  # noqa: F401  (registers the system checks)
        from cfadmin.security import idle_timeout, login_events, user_audit

        login_events.connect()
        user_audit.connect()
        user_logged_in.connect(idle_timeout.mark_login, dispatch_uid="cfadmin.session_clock")
