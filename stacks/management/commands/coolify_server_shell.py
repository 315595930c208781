"""Answer a server command (`free -b`, `df -P -B1`, `docker stats …`, `du …`) as the Coolify
simulator's server would: the local SERVER_COMMAND of `make run` and the tests (no Docker)."""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from stacks.coolify_simulator.server_shell import ShellError, answer, load_view


class Command(BaseCommand):
    help = (
        "Print what the SIMULATED Coolify server would answer to free/df/docker stats/du "
        "(its containers and volumes; figures made up, the same for the same names)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--state",
            default="",
            help="read the simulator's saved state file instead of its live /_sim/state",
        )
        parser.add_argument("--url", default="", help="the simulator (default: COOLIFY_URL)")
        parser.add_argument("--token", default="", help="its token (default: COOLIFY_TOKEN)")
        parser.add_argument("--host", default="", help="the server asked for (ignored: one)")
        parser.add_argument("command", nargs=argparse.REMAINDER, help="e.g. 'free -b'")

    def handle(self, *args: Any, **options: Any) -> None:
        command = " ".join(options["command"]).strip()
        if not command:
            raise CommandError("no command given (e.g. 'free -b && df -P -B1')")
        try:
            view = load_view(
                options["state"],
                options["url"] or settings.COOLIFY_URL,
                options["token"] or settings.COOLIFY_TOKEN,
            )
        except ShellError as error:
            raise CommandError(str(error), returncode=255) from None
        stdout, stderr, code = answer(command, view)
        self.stdout.write(stdout, ending="")
        if stderr:
            self.stderr.write(stderr, ending="")
        if code:
            raise SystemExit(code)
