"""Create the first superuser if there is none (used by `make run`)."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a superuser if none exists; password from CFADMIN_ADMIN_PASSWORD or generated."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = settings.CFADMIN_ADMIN_USERNAME
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(
                f"Admin login: an admin user exists (e.g. {username!r}); its password was printed "
                f"when it was created. Reset it with `python manage.py changepassword {username}`."
            )
            self.stdout.write(self._second_factor_note())
            return
        password = settings.CFADMIN_ADMIN_PASSWORD or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        shown = "(from CFADMIN_ADMIN_PASSWORD)" if settings.CFADMIN_ADMIN_PASSWORD else password
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin login created: user {username!r}, password {shown} — shown only this once."
            )
        )
        self.stdout.write(self._second_factor_note())

    @staticmethod
    def _second_factor_note() -> str:
        if settings.MFA_ENFORCED:
            return (
                "Second factor: required (MFA_ENFORCED); the first login asks to set up an "
                "authenticator app and shows recovery codes once."
            )
        return (
            "Second factor: not enforced (MFA_ENFORCED is off, the default with DEBUG on); "
            "the password alone logs in."
        )
