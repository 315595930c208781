"""Bring every app's django-q2 schedules in step with the settings (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand

from cfadmin.schedules import install_schedules


class Command(BaseCommand):
    help = (
        "Install or update cfadmin's schedules (each app declares its own; intervals such as "
        "HEALTHCHECK_INTERVAL_MINUTES and RECONCILE_INTERVAL_MINUTES come from the settings)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        names = install_schedules()
        self.stdout.write(f"schedules installed: {', '.join(names)}")
