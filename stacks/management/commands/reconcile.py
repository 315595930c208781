"""`python manage.py reconcile`: compare cfadmin with Coolify and PocketBase, print the drift.

Exit status: 0 in sync, 1 drift found (or left after repairs), 2 the comparison failed. With
`--json`, stdout is one JSON document (cfadmin.management.json_output) whose `error` is
`{"code", "message"}` or null; `--verbose` adds a human line on stderr.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import CommandParser

from cfadmin.management.json_output import JsonCommand
from stacks import reconcile

CANNOT_COMPARE = "cannot_compare"
DRIFT = "drift"


def checked(run: Any) -> str:
    return f"{run.stacks_checked} stack{'' if run.stacks_checked == 1 else 's'} checked"


class Command(JsonCommand):
    json_always = False  # text unless --json

    help = (
        "Compare cfadmin's stacks with Coolify's services and PocketBase's agent_stacks records "
        "and print the drift. --repair writes records and marks stacks whose service is gone; "
        "--import "
        "adopts stacks that exist only in Coolify. Exit 0 in sync, 1 drift, 2 cannot compare."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON.")
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Apply the safe repairs: write PocketBase records from cfadmin, mark stacks "
            "whose Coolify service is gone as error.",
        )
        parser.add_argument(
            "--import",
            dest="import_",
            action="store_true",
            help="Import stacks that exist only in Coolify (with their PocketBase record).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = f"cli:{getpass.getuser()}"
        run = reconcile.run_reconcile(actor=actor)
        applied: list[dict[str, str]] = []
        # --repair: the safe repairs (Repair.is_safe); --import: imports.
        wanted = reconcile.unattended_kinds(safe=options["repair"], imports=options["import_"])
        if wanted and not run.error:
            applied = reconcile.apply_repairs(run.drift, wanted, actor=actor)
            if applied:
                note = "; ".join(
                    f"{a['repair']} {a['target']}: {a.get('result') or a['error']}" for a in applied
                )
                run = reconcile.run_reconcile(actor=actor, note=note)
        self.report(run, applied, as_json=options["json"])
        if run.error:
            sys.exit(2)
        if run.drift:
            sys.exit(1)

    def report(self, run: Any, applied: list[dict[str, str]], *, as_json: bool) -> None:
        if as_json:
            error = self.json_error(run)
            self.write_json(
                {
                    "ok": error is None,
                    "error": error,
                    "stacks_checked": run.stacks_checked,
                    "drift": run.drift,
                    "repairs": applied,
                }
            )
            if error:
                self.explain(error["code"], error["message"])
            return
        for item in applied:
            outcome = item.get("result") or f"not repaired: {item['error']}"
            self.stdout.write(f"{item['repair']} {item['target']}: {outcome}")
        if run.error:
            self.stderr.write(f"Cannot compare: {run.error}")
            return
        if not run.drift:
            self.stdout.write(f"In sync: {checked(run)}, no drift.")
            return
        self.stdout.write(f"{len(run.drift)} drift found ({checked(run)}):")
        for drift in run.drift:
            repairs = ", ".join(drift["repairs"]) or "none (see message)"
            self.stdout.write(
                f"  {drift['kind']:<16} {drift['tenant']}/{drift['stack_name']}: "
                f"{drift['message']}  [repair: {repairs}]"
            )

    @staticmethod
    def json_error(run: Any) -> dict[str, str] | None:
        if run.error:
            return {"code": CANNOT_COMPARE, "message": f"Cannot compare: {run.error}"}
        if run.drift:
            return {"code": DRIFT, "message": f"{len(run.drift)} drift found ({checked(run)})."}
        return None
