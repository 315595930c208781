"""The runbook's daily health check: run every check now, store it, print JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ops.health import CHECK_NAMES, CHECKS, run_and_record


class Command(BaseCommand):
    help = (
        "Check Coolify, PocketBase, active stacks, servers, disk (and HTTPS when enabled); "
        "print JSON; exit non-zero when a critical check is down."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "checks",
            nargs="*",
            metavar="CHECK",
            help=f"only these checks (default: all): {', '.join(CHECK_NAMES)}",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        unknown = sorted(set(options["checks"]) - set(CHECK_NAMES))
        if unknown:
            raise CommandError(f"unknown checks {unknown}; choose from {CHECK_NAMES}")
        disabled = [c.name for c in CHECKS if c.name in options["checks"] and not c.enabled()]
        if disabled:
            raise CommandError(
                f"checks switched off in the settings: {disabled} "
                "(https_domains needs HEALTHCHECK_HTTPS=true)"
            )
        report = run_and_record(options["checks"] or None)
        self.stdout.write(json.dumps(report, indent=2))
        if not report["ok"]:
            raise CommandError(f"critical checks down: {', '.join(report['critical_down'])}")
