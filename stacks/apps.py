from django.apps import AppConfig


class StacksConfig(AppConfig):
    name = "stacks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Each qcluster worker process runs recovery and the PocketBase outbox when it starts
        # and then every PROVISION_RECOVERY_INTERVAL (stacks/recovery.py says why).
        from django_q.signals import post_spawn

        from stacks.recovery import start_worker_maintenance

        post_spawn.connect(start_worker_maintenance, dispatch_uid="cfadmin-worker-maintenance")
