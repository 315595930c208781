"""`provision deploy|list|delete`: the runbook's `node index.js …`, with the same flags and JSON.

Deploy and delete queue the same operations as the admin and wait for them (a qcluster worker
runs them); `--no-wait` prints the operation id instead. Errors print one JSON document,
`{"ok": false, "error": {"code", "message", "field"?, "fields"?}}` (`fields`: every field and
rule; cfadmin.management.json_output), and exit non-zero; `--verbose` adds a line on stderr.
Secrets can come from `--env-file` (a file or `-` for stdin) so they stay out of shell history;
they never appear in the output, not even in a dry-run.
"""

from __future__ import annotations

import getpass
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django.db import transaction

from cfadmin.management.json_output import (
    CommandFailure,
    FieldProblem,
    JsonArgumentParser,
    JsonCommand,
    add_verbose_flag,
)
from stacks.choices import OperationKind, OperationStatus
from stacks.models import Operation, Stack
from stacks.plan import DeployRequest, build_deploy_plan
from stacks.services import (
    DeployRefused,
    OperationRefused,
    deploy_stack,
    request_operation,
    tenant_stack_listing,
)
from tenants.models import Tenant

WORKER_HINT_AFTER = 15.0  # seconds queued before we say a worker may be missing


class ProvisionError(CommandFailure):
    """A provision failure: `{"ok": false, "error": {...}}` on stdout (see json_output)."""


def key_value(text: str, *, flag: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        # Never echo the text: an --env value is often a secret.
        raise ProvisionError(
            "bad_flag",
            f"{flag} takes KEY=VALUE (the text given has no KEY= part; it is not shown here)",
            field=flag.lstrip("-"),
        )
    return key.strip(), value


class Command(JsonCommand):
    help = "Deploy, list and delete agent stacks (the runbook's provisioner), printing JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(
            dest="action", required=True, parser_class=JsonArgumentParser
        )
        deploy = commands.add_parser("deploy", help="deploy a new stack from a template")
        add_verbose_flag(deploy)
        deploy.add_argument("--tenant", required=True)
        deploy.add_argument("--project-name", required=True)
        deploy.add_argument("--template", required=True)
        deploy.add_argument("--stack-name", required=True)
        deploy.add_argument("--domain", action="append", default=[], metavar="SERVICE=HOST")
        deploy.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
        deploy.add_argument(
            "--env-file", metavar="PATH", help="KEY=VALUE lines from a file, or - for stdin"
        )
        deploy.add_argument("--dry-run", action="store_true")
        deploy.add_argument("--no-wait", action="store_true")
        deploy.add_argument(
            "--timeout", type=float, default=None, help="seconds to wait for the operation"
        )
        listing = commands.add_parser("list", help="list a tenant's stacks")
        add_verbose_flag(listing)
        listing.add_argument("--tenant", required=True)
        delete = commands.add_parser("delete", help="delete a stack: containers, volumes, data")
        add_verbose_flag(delete)
        delete.add_argument("--tenant", required=True)
        delete.add_argument("--stack-name", required=True)
        delete.add_argument(
            "--yes", action="store_true", help="skip the typed confirmation (for scripts)"
        )
        delete.add_argument("--no-wait", action="store_true")
        delete.add_argument("--timeout", type=float, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        result = getattr(self, f"do_{action}")(options)
        self.write_json(result)
        if result.get("ok") is False:  # an operation's own failure shape: already printed
            error = result.get("error") if isinstance(result.get("error"), dict) else {}
            raise self.fail_reported(
                error.get("code", "operation_failed"),
                error.get("message", "The operation reported a failure."),
            )

    @property
    def actor(self) -> str:
        return f"cli:{getpass.getuser()}"

    # --- deploy ------------------------------------------------------------------------------

    def do_deploy(self, options: dict[str, Any]) -> dict[str, Any]:
        env: dict[str, str] = {}
        if options["env_file"]:
            env.update(self._read_env_file(options["env_file"]))
        # Every malformed --env/--domain at once, not just the first.
        problems: list[FieldProblem] = []
        pairs: dict[str, list[tuple[str, str]]] = {"--env": [], "--domain": []}
        for flag, option in (("--env", "env"), ("--domain", "domain")):
            for item in options[option]:
                try:
                    pairs[flag].append(key_value(item, flag=flag))
                except ProvisionError as bad:
                    problems.extend(bad.fields)
        if problems:
            raise ProvisionError.from_field_errors([p.as_dict() for p in problems], code="bad_flag")
        env.update(pairs["--env"])
        domains = pairs["--domain"]
        request = DeployRequest(
            tenant=options["tenant"],
            project_name=options["project_name"],
            template=options["template"],
            stack_name=options["stack_name"],
            domains=[(service, host.strip()) for service, host in domains],
            env=env,
            create_tenant=True,  # the runbook's CLI took any tenant slug
        )
        if options["dry_run"]:
            plan = build_deploy_plan(request)
            if not plan["ok"]:
                raise ProvisionError.from_field_errors(plan["errors"])
            return {"ok": True, "dry_run": True, "plan": plan}
        try:
            with transaction.atomic():
                operation = deploy_stack(request, actor=self.actor)
        except DeployRefused as refused:
            raise ProvisionError.from_field_errors([e.as_dict() for e in refused.errors]) from None
        except OperationRefused as refused:
            raise ProvisionError(refused.code, refused.message, "stack_name") from None
        return self._finish(operation, options)

    def _read_env_file(self, path: str) -> dict[str, str]:
        try:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
        except OSError as exc:
            raise ProvisionError(
                "bad_flag", f"cannot read --env-file {path}: {exc.strerror}", "env-file"
            ) from None
        values = {}
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            key, sep, value = stripped.partition("=")
            if not sep:
                raise ProvisionError(
                    "bad_flag", f"--env-file line {number} is not KEY=VALUE", "env-file"
                )
            values[key.strip()] = value
        return values

    # --- list ---------------------------------------------------------------------------------

    def do_list(self, options: dict[str, Any]) -> dict[str, Any]:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise ProvisionError(
                "unknown_tenant", f"Unknown tenant {options['tenant']!r}.", "tenant"
            )
        return tenant_stack_listing(tenant)

    # --- delete -------------------------------------------------------------------------------

    def do_delete(self, options: dict[str, Any]) -> dict[str, Any]:
        stack = (
            Stack.live_named(options["stack_name"]).filter(tenant__slug=options["tenant"]).first()
        )
        if stack is None:
            raise ProvisionError(
                "unknown_stack",
                f"Tenant {options['tenant']} has no live stack {options['stack_name']}.",
                "stack_name",
            )
        if not options["yes"]:
            self._confirm(stack)
        try:
            with transaction.atomic():
                operation = request_operation(
                    stack,
                    OperationKind.DELETE,
                    actor=self.actor,
                    parameters={"confirmed": str(stack)},
                )
        except OperationRefused as refused:
            raise ProvisionError(refused.code, refused.message, "stack_name") from None
        return self._finish(operation, options)

    def _confirm(self, stack: Stack) -> None:
        if not sys.stdin.isatty():
            raise ProvisionError(
                "confirmation_required",
                f"Deleting removes containers, volumes and data. Run on a terminal to type "
                f"{stack} as confirmation, or pass --yes.",
                "yes",
            )
        sys.stderr.write(
            f"DANGER: this deletes {stack} — its containers, volumes and data.\n"
            f"Type {stack} to confirm: "
        )
        sys.stderr.flush()
        if sys.stdin.readline().strip() != str(stack):
            raise ProvisionError(
                "confirmation_mismatch",
                "Confirmation did not match; nothing was deleted.",
                "stack_name",
            )

    # --- waiting ------------------------------------------------------------------------------

    def _finish(self, operation: Operation, options: dict[str, Any]) -> dict[str, Any]:
        if options["no_wait"]:
            return {
                "ok": True,
                "queued": True,
                "operation_id": operation.pk,
                "kind": operation.kind,
                "stack": str(operation.stack),
            }
        timeout = options["timeout"] or (
            settings.PROVISION_HEALTH_TIMEOUT + settings.PROVISION_DELETE_TIMEOUT + 60
        )
        deadline = time.monotonic() + timeout
        hinted = False
        queued_since = time.monotonic()
        while True:
            operation.refresh_from_db()
            if operation.status == OperationStatus.SUCCEEDED:
                return operation.result
            if operation.status in (OperationStatus.FAILED, OperationStatus.CANCELLED):
                error = operation.result.get("error", {}) if operation.result else {}
                raise ProvisionError(
                    error.get("code", "operation_failed"), operation.error or "Operation failed."
                )
            if time.monotonic() >= deadline:
                raise ProvisionError(
                    "timeout",
                    f"Operation #{operation.pk} is still {operation.status} after "
                    f"{int(timeout)}s; it goes on in the background (see the admin).",
                )
            if (
                not hinted
                and operation.status == OperationStatus.QUEUED
                and time.monotonic() - queued_since > WORKER_HINT_AFTER
            ):
                sys.stderr.write(
                    f"operation #{operation.pk} is still queued: is a worker "
                    "(python manage.py qcluster) running?\n"
                )
                hinted = True
            time.sleep(0.5)
