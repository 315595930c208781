"""Bring the django-q2 schedules in step with the settings (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand

from ops.schedules import install_schedules


class Command(BaseCommand):
    help = (
        "Install or update cfadmin's schedules (health checks every HEALTHCHECK_INTERVAL_MINUTES)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        install_schedules()
        self.stdout.write("schedules installed")
