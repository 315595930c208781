from django.apps import AppConfig


class CfadminConfig(AppConfig):
    name = "cfadmin"
    verbose_name = "Audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cfadmin import checks  # noqa: F401  (registers the system checks)
