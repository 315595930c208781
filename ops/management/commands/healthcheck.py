"""The runbook's daily health check: run every check now, store it, print JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ops.health import CHECK_NAMES, run_and_record


class Command(BaseCommand):
    help = (
        "Check Coolify, PocketBase, active stacks, servers, disk (and HTTPS when enabled); "
        "print JSON; exit non-zero when a critical check is down."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "checks", nargs="*", choices=[*CHECK_NAMES, []], help="only these checks (default: all)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = run_and_record(options["checks"] or None)
        self.stdout.write(json.dumps(report, indent=2))
        if not report["ok"]:
            raise CommandError(f"critical checks down: {', '.join(report['critical_down'])}")
