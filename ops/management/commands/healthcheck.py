"""The runbook's daily health check: run every check now, store it, print JSON.

stdout is one JSON document (cfadmin.management.json_output): the report, which carries an
`error` when a critical check is down, or the error alone when the checks named are wrong.
"""

from __future__ import annotations

from typing import Any

from cfadmin.management.json_output import CommandFailure, JsonCommand
from ops.health import CHECK_NAMES, CHECKS, run_and_record

CRITICAL_DOWN = "critical_checks_down"


class Command(JsonCommand):
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
        self._check_names(options["checks"])
        report = run_and_record(options["checks"] or None)
        if not report["ok"]:
            message = f"critical checks down: {', '.join(report['critical_down'])}"
            report["error"] = {"code": CRITICAL_DOWN, "message": message}
            self.write_json(report)
            raise self.fail_reported(CRITICAL_DOWN, message)
        self.write_json(report)

    @staticmethod
    def _check_names(names: list[str]) -> None:
        """Every wrong name at once: unknown ones, and ones the settings switch off."""
        problems = [
            {
                "field": "checks",
                "code": "unknown_check",
                "message": f"unknown check {name!r}; choose from {', '.join(CHECK_NAMES)}",
            }
            for name in sorted(set(names) - set(CHECK_NAMES))
        ]
        problems += [
            {
                "field": "checks",
                "code": "check_disabled",
                "message": f"check {check.name!r} is switched off in the settings"
                + (" (it needs HEALTHCHECK_HTTPS=true)" if check.name == "https_domains" else ""),
            }
            for check in CHECKS
            if check.name in names and not check.enabled()
        ]
        if problems:
            raise CommandFailure.from_field_errors(problems)
