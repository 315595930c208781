"""Create the first superuser if there is none (used by `make run`).

In development (DEBUG, as `make run` sets it) a generated password is handed to runlocal's
closing summary box instead of being printed among the migrations (startup_summary).
`--show-password` prints it here instead.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from cfadmin.management.startup_summary import (
    hands_password_to_summary,
    keep_password_for_summary,
    reset_password_command,
    second_factor_note,
)


class Command(BaseCommand):
    help = "Create a superuser if none exists; password from CFADMIN_ADMIN_PASSWORD or generated."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--show-password",
            action="store_true",
            help="print a generated password here, not in runlocal's start-up summary",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = settings.CFADMIN_ADMIN_USERNAME
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(
                f"Admin login: an admin user exists (e.g. {username!r}); its password was shown "
                f"when it was created. Set or reset it with `{reset_password_command(username)}`."
            )
            self.stdout.write(second_factor_note())
            return
        password = settings.CFADMIN_ADMIN_PASSWORD or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if settings.CFADMIN_ADMIN_PASSWORD:
            shown = "password from CFADMIN_ADMIN_PASSWORD"
        elif hands_password_to_summary() and not options["show_password"]:
            path = keep_password_for_summary(username, password)
            shown = (
                "password shown once in the summary box when cfadmin has started "
                f"(until then in {path.name} in the data folder, readable only by you)"
            )
        else:
            shown = f"password {password} — shown only this once"
        self.stdout.write(self.style.SUCCESS(f"Admin login created: user {username!r}, {shown}."))
        self.stdout.write(f"Set or reset the password: {reset_password_command(username)}")
        self.stdout.write(second_factor_note())
