"""Audit the stack templates against the hardening rules; non-zero exit on any finding.

`--json` prints one JSON document (cfadmin.management.json_output): the report by template, or
`{"ok": false, "error": …}` when there is nothing to audit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfadmin.management.json_output import CommandFailure, JsonCommand
from stacks.catalog import TEMPLATES_DIR, template_names
from stacks.compose import RULES, audit_report


class Command(JsonCommand):
    json_always = False  # text unless --json

    help = (
        "Render each stack template for sample inputs and audit it against the hardening rules "
        f"({len(RULES)} rules). Exits non-zero when any template fails."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("names", nargs="*", help="templates to audit (default: all)")
        parser.add_argument(
            "--templates-dir",
            type=Path,
            default=TEMPLATES_DIR,
            help="folder of templates (default: the ones cfadmin ships)",
        )
        parser.add_argument("--json", action="store_true", help="print a JSON report")

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["templates_dir"]
        names = options["names"] or template_names(folder)
        if not names:
            raise CommandFailure("no_templates", f"no templates found in {folder}", "templates_dir")
        report = audit_report(names, folder)
        self._print(report, as_json=options["json"])
        failed = [name for name, result in report.items() if not result["ok"]]
        if failed:
            raise self.fail_reported(
                "audit_failed", f"hardening audit failed for: {', '.join(failed)}"
            )

    def _print(self, report: dict[str, dict[str, Any]], *, as_json: bool) -> None:
        if as_json:
            self.write_json(report)
            return
        for name, result in report.items():
            if result["ok"]:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"PASS {name} {result['version']}: all {len(RULES)} rules hold"
                    )
                )
                continue
            self.stdout.write(self.style.ERROR(f"FAIL {name} {result['version'] or ''}"))
            if result["error"]:
                self.stdout.write(f"  error: {result['error']}")
            for finding in result["findings"]:
                self.stdout.write(
                    f"  {finding['service']}: [{finding['rule']}] {finding['message']}"
                    f" — {finding['why']}"
                )
