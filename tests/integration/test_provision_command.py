"""`manage.py provision deploy|list|delete`: the runbook's provisioner, JSON key by key.

Deploy and delete run for real (django-q2 in sync mode: the queued operation runs at commit)
against the Coolify simulator and a real PocketBase. Every output, on success and on each error
class, is compared key by key with the runbook's shapes, and never holds a secret value. A few
cases run `manage.py provision` as a real process to prove the exit codes and stdin handling.
"""

from __future__ import annotations

import getpass
import io
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import django_q.conf
import pytest
from django.core.management import CommandError, call_command

from cfadmin.models import AuditAction, AuditEvent
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.clients.http import JsonHttpClient
from stacks.coolify_simulator.server import Fault
from stacks.local_pocketbase import free_port
from stacks.models import Operation, Stack, StackSecret
from tenants.models import Tenant
from tests.conftest import PB_EMAIL, PB_PASSWORD, SIM_TOKEN
from tests.integration.workers import database_url

pytestmark = pytest.mark.integration

BASE_DIR = Path(__file__).resolve().parents[2]
TENANT = "customer-123"
PROJECT = "customer-123-project"
TEMPLATE = "openclaw-agent"
STACK = "customer-123-main"
DOMAIN = "demo.customer123.com"
ANTHROPIC_KEY = "sk-test-provision-0123456789abcdefghij"
TELEGRAM_TOKEN = "123456789:test-provision-telegram-token"
SECRETS = (ANTHROPIC_KEY, TELEGRAM_TOKEN)
CLI_ACTOR = f"cli:{getpass.getuser()}"
CREATED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

# The runbook's "Deploy New Agent Stack" flags, values replaced by test fakes.
RUNBOOK_DEPLOY = [
    "deploy",
    "--tenant",
    TENANT,
    "--project-name",
    PROJECT,
    "--template",
    TEMPLATE,
    "--stack-name",
    STACK,
    "--domain",
    f"webui={DOMAIN}",
]
RUNBOOK_ENV = [
    "--env",
    f"ANTHROPIC_API_KEY={ANTHROPIC_KEY}",
    "--env",
    f"TELEGRAM_BOT_TOKEN={TELEGRAM_TOKEN}",
]
DELETE = ["delete", "--tenant", TENANT, "--stack-name", STACK]

DEPLOY_KEYS = {"ok", "project_uuid", "service_uuid", "domains", "pocketbase_id", "duration_ms"}
DELETE_KEYS = {"ok", "deleted", "duration_ms"}
DELETED_KEYS = {"stack_name", "tenant", "coolify_service_uuid", "pocketbase_id"}
LIST_KEYS = {"tenant", "total", "stacks"}
LIST_STACK_KEYS = {"id", "stack_name", "template", "status", "created"}
PLAN_KEYS = {
    "ok",
    "tenant",
    "project_name",
    "stack_name",
    "template",
    "domains",
    "env",
    "compose",
    "coolify_calls",
    "pocketbase",
    "audit",
    "errors",
}


# --- helpers ----------------------------------------------------------------------------------


class Run:
    """One `provision` run: its parsed JSON, the raw text, stderr and how it ended."""

    def __init__(
        self, output: dict[str, Any], text: str, error: CommandError | None, stderr: str = ""
    ) -> None:
        self.output = output
        self.text = text
        self.error = error
        self.stderr = stderr


def provision(*args: str) -> Run:
    """call_command, capturing stdout and stderr; a failure is a CommandError plus printed JSON."""
    out, err = io.StringIO(), io.StringIO()
    error = None
    try:
        call_command("provision", *args, stdout=out, stderr=err)
    except CommandError as exc:
        error = exc
    text = out.getvalue() + err.getvalue()
    assert_no_secret(text)
    return Run(json.loads(out.getvalue()), text, error, err.getvalue())


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def assert_succeeded(run: Run) -> dict[str, Any]:
    assert run.error is None, run.text
    return run.output


def assert_error(run: Run, code: str, field: str | None = None) -> dict[str, Any]:
    """`{ok: false, error: {code, message[, field, fields]}}`, key by key, a non-zero exit, and
    nothing on stderr (that is for --verbose)."""
    assert run.error is not None, f"expected a failure, got {run.text}"
    assert run.error.returncode != 0
    output = run.output
    assert set(output) == {"ok", "error"}
    assert output["ok"] is False
    error = output["error"]
    assert set(error) == ({"code", "message", "field", "fields"} if field else {"code", "message"})
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"].strip()
    if field:
        assert error["field"] == field
        # `field` is the first of `fields`, which names every field and the rule it broke.
        assert error["fields"][0]["field"] == field
        for problem in error["fields"]:
            assert set(problem) == {"field", "code", "message"}
            assert problem["code"] and problem["message"].strip()
    assert str(run.error) == error["message"]
    assert run.stderr == ""
    return error


@pytest.fixture
def sync_q(monkeypatch):
    """async_task runs inline: a queued operation runs when its transaction commits."""
    monkeypatch.setattr(django_q.conf.Conf, "SYNC", True)


@pytest.fixture
def fast_retries(monkeypatch, settings):
    """Failures end at once: one attempt per step, no back-off between HTTP retries."""
    settings.PROVISION_STEP_ATTEMPTS = 1
    monkeypatch.setattr(JsonHttpClient, "_back_off", lambda self, error, attempt: None)


@pytest.fixture
def tenant(db, make_tenant) -> Tenant:
    return make_tenant(TENANT)


def deploy_runbook_example(*extra: str) -> Run:
    return provision(*RUNBOOK_DEPLOY, *RUNBOOK_ENV, *extra)


def nothing_created() -> None:
    assert not Stack.objects.filter(stack_name=STACK, tenant__slug=TENANT).exists()
    assert not Operation.objects.exists()


# --- deploy -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_runbook_example_deploys_with_the_runbook_json(
    sync_q, remote, coolify_sim, pocketbase, tenant
):
    output = assert_succeeded(deploy_runbook_example())

    assert set(output) == DEPLOY_KEYS
    assert output["ok"] is True
    stack = Stack.objects.get(tenant=tenant, stack_name=STACK)
    assert stack.status == StackStatus.RUNNING
    assert output["project_uuid"] == stack.coolify_project_uuid != ""
    assert output["service_uuid"] == stack.coolify_service_uuid != ""
    assert output["domains"] == [DOMAIN]
    record = pocketbase.find_record(TENANT, STACK)
    assert record is not None and record["status"] == "running"
    assert output["pocketbase_id"] == record["id"] == stack.pocketbase_id
    assert isinstance(output["duration_ms"], int) and output["duration_ms"] >= 0
    # What the output names exists in Coolify, with the secrets as env values only.
    [service] = coolify_sim.api.snapshot()["services"]
    assert service["uuid"] == output["service_uuid"]
    assert service["envs"]["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert service["envs"]["TELEGRAM_BOT_TOKEN"] == TELEGRAM_TOKEN
    assert [p["uuid"] for p in coolify_sim.api.snapshot()["projects"]] == [output["project_uuid"]]
    assert {s.key: s.reveal() for s in stack.secrets.all()} == {
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
    }


@pytest.mark.django_db(transaction=True)
def test_the_operation_and_the_audit_trail_name_the_os_user(sync_q, remote, tenant):
    assert_succeeded(deploy_runbook_example())
    assert_succeeded(provision(*DELETE, "--yes"))

    stack = Stack.objects.get(tenant=tenant, stack_name=STACK)
    operations = list(stack.operations.order_by("id"))
    assert [(o.kind, o.status) for o in operations] == [
        (OperationKind.DEPLOY, OperationStatus.SUCCEEDED),
        (OperationKind.DELETE, OperationStatus.SUCCEEDED),
    ]
    for operation in operations:
        assert operation.requested_by_repr == CLI_ACTOR
        assert operation.requested_by is None
    by_cli = AuditEvent.objects.filter(actor_repr=CLI_ACTOR)
    assert set(by_cli.values_list("action", flat=True)) == {
        AuditAction.CREATE,
        AuditAction.OPERATION,
    }
    assert by_cli.filter(action=AuditAction.OPERATION).count() == 2
    assert set(by_cli.values_list("tenant_slug", "stack_name")) == {(TENANT, STACK)}
    assert not AuditEvent.objects.exclude(actor_repr__in=[CLI_ACTOR, "system"]).exists()
    every_event = json.dumps(list(AuditEvent.objects.values("message", "changes")))
    assert_no_secret(every_event)
    assert_no_secret(json.dumps(list(Operation.objects.values("parameters", "result"))))


@pytest.mark.django_db(transaction=True)
def test_a_deploy_for_a_tenant_cfadmin_does_not_know_yet_creates_it(sync_q, remote):
    """The runbook's CLI took any tenant slug; services.deploy_stack creates unknown tenants
    when the request says so (DeployRequest.create_tenant: "The CLI creates a tenant it does
    not know yet")."""
    run = deploy_runbook_example()

    assert run.error is None, run.text
    assert run.output["ok"] is True
    tenant = Tenant.objects.get(slug=TENANT)
    assert Stack.objects.get(stack_name=STACK).tenant == tenant
    assert AuditEvent.objects.filter(
        actor_repr=CLI_ACTOR, action=AuditAction.CREATE, target_repr__contains=TENANT
    ).exists()


@pytest.mark.django_db
def test_a_dry_run_prints_the_plan_and_touches_nothing(tenant, coolify_sim, settings):
    settings.COOLIFY_URL = coolify_sim.url
    run = deploy_runbook_example("--dry-run")

    output = assert_succeeded(run)
    assert set(output) == {"ok", "dry_run", "plan"}
    assert output["ok"] is True and output["dry_run"] is True
    plan = output["plan"]
    assert set(plan) == PLAN_KEYS
    assert plan["ok"] is True and plan["errors"] == []
    assert (plan["tenant"], plan["project_name"], plan["stack_name"]) == (TENANT, PROJECT, STACK)
    assert plan["template"]["name"] == TEMPLATE and plan["template"]["version"]
    assert plan["domains"] == {"webui": [DOMAIN]}
    assert plan["env"] == {"ANTHROPIC_API_KEY": "sk-…ghij", "TELEGRAM_BOT_TOKEN": "123…oken"}
    # The compose service key names the stack (Coolify names its container `<key>-<uuid>`);
    # no container_name: Coolify would override it.
    assert f'\n  "cf-agent-{TENANT}-{STACK}":\n' in plan["compose"]
    assert "container_name" not in plan["compose"]
    assert "${ANTHROPIC_API_KEY}" in plan["compose"]
    assert [c["step"] for c in plan["coolify_calls"]][-2:] == ["start", "wait_healthy"]
    assert plan["pocketbase"]["record"]["stack_name"] == STACK
    assert plan["audit"]["ok"] is True
    nothing_created()
    assert coolify_sim.api.snapshot()["call_count"] == 0


@pytest.mark.django_db(transaction=True)
def test_env_file_from_a_file_keeps_secrets_off_the_command_line(
    sync_q, remote, coolify_sim, tenant, tmp_path
):
    env_file = tmp_path / "customer-123.env"
    env_file.write_text(
        "# runbook example\n\n"
        f"ANTHROPIC_API_KEY={ANTHROPIC_KEY}\n"
        f"TELEGRAM_BOT_TOKEN={TELEGRAM_TOKEN}\n"
    )

    output = assert_succeeded(provision(*RUNBOOK_DEPLOY, "--env-file", str(env_file)))

    assert set(output) == DEPLOY_KEYS and output["ok"] is True
    stack = Stack.objects.get(stack_name=STACK)
    assert {s.key: s.reveal() for s in stack.secrets.all()} == {
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
    }
    [service] = coolify_sim.api.snapshot()["services"]
    assert service["envs"]["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert stack.operations.get().parameters["env_keys"] == [
        "ANTHROPIC_API_KEY",
        "TELEGRAM_BOT_TOKEN",
    ]


@pytest.mark.django_db
def test_env_file_from_stdin(tenant, monkeypatch):
    monkeypatch.setattr(
        sys,
        "stdin",
        io.StringIO(f"ANTHROPIC_API_KEY={ANTHROPIC_KEY}\nTELEGRAM_BOT_TOKEN={TELEGRAM_TOKEN}\n"),
    )

    output = assert_succeeded(provision(*RUNBOOK_DEPLOY, "--env-file", "-", "--no-wait"))

    assert output["ok"] is True
    stack = Stack.objects.get(stack_name=STACK)
    assert StackSecret.objects.get(stack=stack, key="ANTHROPIC_API_KEY").reveal() == ANTHROPIC_KEY
    assert StackSecret.objects.get(stack=stack, key="TELEGRAM_BOT_TOKEN").reveal() == TELEGRAM_TOKEN


@pytest.mark.django_db
def test_a_bad_env_file_line_is_a_bad_flag(tenant, tmp_path):
    env_file = tmp_path / "bad.env"
    env_file.write_text(f"ANTHROPIC_API_KEY={ANTHROPIC_KEY}\n{TELEGRAM_TOKEN}\n")

    error = assert_error(
        provision(*RUNBOOK_DEPLOY, "--env-file", str(env_file)), "bad_flag", "env-file"
    )

    assert "line 2" in error["message"]
    nothing_created()


@pytest.mark.django_db
def test_no_wait_returns_the_operation_id(tenant):
    output = assert_succeeded(deploy_runbook_example("--no-wait"))

    operation = Operation.objects.get()
    assert output == {
        "ok": True,
        "queued": True,
        "operation_id": operation.pk,
        "kind": OperationKind.DEPLOY,
        "stack": f"{TENANT}/{STACK}",
    }
    assert operation.status == OperationStatus.QUEUED
    assert operation.requested_by_repr == CLI_ACTOR


# --- list -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_list_has_the_runbook_shape(sync_q, remote, pocketbase, tenant, make_stack):
    assert_succeeded(deploy_runbook_example())
    make_stack(tenant, "customer-123-second", domains={"webui": "second.customer123.com"})
    make_stack(tenant, "customer-123-old", status=StackStatus.DELETED)
    make_stack("customer-999", "customer-999-main")

    output = assert_succeeded(provision("list", "--tenant", TENANT))

    assert set(output) == LIST_KEYS
    assert output["tenant"] == TENANT
    assert output["total"] == 2 == len(output["stacks"])
    first, second = output["stacks"]
    for row in (first, second):
        assert set(row) == LIST_STACK_KEYS
        assert CREATED.fullmatch(row["created"]), row["created"]
    stack = Stack.objects.get(stack_name=STACK)
    assert first == {
        "id": pocketbase.find_record(TENANT, STACK)["id"],
        "stack_name": STACK,
        "template": TEMPLATE,
        "status": "running",
        "created": stack.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert (second["stack_name"], second["status"], second["id"]) == (
        "customer-123-second",
        "pending",
        None,
    )


@pytest.mark.django_db
def test_list_of_an_unknown_tenant_is_an_error():
    assert_error(provision("list", "--tenant", "nobody-here"), "unknown_tenant", "tenant")


# --- delete -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_delete_with_yes_leaves_nothing_and_prints_the_runbook_json(
    sync_q, remote, coolify_sim, pocketbase, tenant
):
    deployed = assert_succeeded(deploy_runbook_example())
    stack = Stack.objects.get(stack_name=STACK)

    output = assert_succeeded(provision(*DELETE, "--yes"))

    assert set(output) == DELETE_KEYS
    assert output["ok"] is True
    assert set(output["deleted"]) == DELETED_KEYS
    assert output["deleted"] == {
        "stack_name": STACK,
        "tenant": TENANT,
        "coolify_service_uuid": deployed["service_uuid"],
        "pocketbase_id": deployed["pocketbase_id"],
    }
    assert isinstance(output["duration_ms"], int) and output["duration_ms"] >= 0
    stack.refresh_from_db()
    assert stack.status == StackStatus.DELETED and stack.deleted_at is not None  # a tombstone
    state = coolify_sim.api.snapshot()
    assert state["services"] == [] and state["volumes"] == []
    assert pocketbase.find_record(TENANT, STACK) is None
    assert pocketbase.list_records() == []
    assert assert_succeeded(provision("list", "--tenant", TENANT))["total"] == 0


@pytest.mark.django_db(transaction=True)
def test_delete_without_yes_and_without_a_terminal_queues_nothing(
    sync_q, remote, coolify_sim, tenant, monkeypatch
):
    assert_succeeded(deploy_runbook_example())
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # a pipe, not a terminal

    error = assert_error(provision(*DELETE), "confirmation_required", "yes")

    assert "--yes" in error["message"] and f"{TENANT}/{STACK}" in error["message"]
    stack = Stack.objects.get(stack_name=STACK)
    assert stack.status == StackStatus.RUNNING
    assert not stack.operations.filter(kind=OperationKind.DELETE).exists()
    assert len(coolify_sim.api.snapshot()["services"]) == 1


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.django_db
def test_delete_on_a_terminal_needs_the_typed_name(tenant, make_stack, monkeypatch):
    stack = make_stack(tenant, STACK, status=StackStatus.RUNNING)

    monkeypatch.setattr(sys, "stdin", FakeTerminal("customer-123-main\n"))  # no tenant part
    assert_error(provision(*DELETE, "--no-wait"), "confirmation_mismatch", "stack_name")
    assert not Operation.objects.exists()

    monkeypatch.setattr(sys, "stdin", FakeTerminal(f"{TENANT}/{STACK}\n"))
    output = assert_succeeded(provision(*DELETE, "--no-wait"))
    operation = Operation.objects.get()
    assert (operation.stack, operation.kind) == (stack, OperationKind.DELETE)
    assert output["operation_id"] == operation.pk and output["kind"] == OperationKind.DELETE


@pytest.mark.django_db
def test_delete_of_an_unknown_stack_is_an_error(tenant):
    assert_error(provision(*DELETE, "--yes"), "unknown_stack", "stack_name")


# --- error classes ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_bad_flag_domain_without_equals(tenant):
    error = assert_error(
        provision(*RUNBOOK_DEPLOY[:-1], "webui", *RUNBOOK_ENV), "bad_flag", "domain"
    )

    assert "--domain" in error["message"]
    nothing_created()


@pytest.mark.django_db
def test_bad_flag_env_without_equals_does_not_echo_the_value(tenant):
    """`--env ANTHROPIC_API_KEY:sk-…` (a typo) must not print the key back."""
    run = provision_raw(*RUNBOOK_DEPLOY, "--env", f"ANTHROPIC_API_KEY:{ANTHROPIC_KEY}")

    assert run.error is not None and run.output["error"]["code"] == "bad_flag"
    assert ANTHROPIC_KEY not in run.text
    nothing_created()


def provision_raw(*args: str) -> Run:
    """Like provision(), but leaves the secret check to the test."""
    out, err = io.StringIO(), io.StringIO()
    error = None
    try:
        call_command("provision", *args, stdout=out, stderr=err)
    except CommandError as exc:
        error = exc
    return Run(json.loads(out.getvalue()), out.getvalue() + err.getvalue(), error)


@pytest.mark.django_db
def test_unknown_template(tenant):
    args = [*RUNBOOK_DEPLOY, *RUNBOOK_ENV]
    args[args.index(TEMPLATE)] = "openclaw-agnet"

    error = assert_error(provision(*args), "unknown_template", "template")

    assert "openclaw-agnet" in error["message"] and "openclaw-agent" in error["message"]
    nothing_created()


@pytest.mark.django_db
def test_unknown_template_in_a_dry_run(tenant):
    args = [*RUNBOOK_DEPLOY, *RUNBOOK_ENV, "--dry-run"]
    args[args.index(TEMPLATE)] = "openclaw-agnet"

    assert_error(provision(*args), "unknown_template", "template")


@pytest.mark.django_db
def test_duplicate_stack(tenant, make_stack):
    running = make_stack(
        tenant, STACK, status=StackStatus.RUNNING, domains={"webui": "old.customer123.com"}
    )

    error = assert_error(deploy_runbook_example(), "stack_name_taken", "stack_name")

    assert STACK in error["message"]
    assert Stack.objects.filter(stack_name=STACK).get() == running
    assert not Operation.objects.exists()


@pytest.mark.django_db
def test_domain_taken(tenant, make_stack):
    make_stack(
        "customer-999", "customer-999-main", status=StackStatus.RUNNING, domains={"webui": DOMAIN}
    )

    error = assert_error(deploy_runbook_example(), "domain_taken", "domain.webui")

    assert DOMAIN in error["message"] and "customer-999/customer-999-main" in error["message"]
    nothing_created()


@pytest.mark.django_db
def test_several_problems_at_once_are_one_validation_error(tenant, make_stack):
    make_stack(
        "customer-999", "customer-999-main", status=StackStatus.RUNNING, domains={"webui": DOMAIN}
    )
    args = [*RUNBOOK_DEPLOY]
    args[args.index(TEMPLATE)] = "openclaw-agnet"

    error = assert_error(provision(*args, *RUNBOOK_ENV), "validation_failed", "template")

    assert "template:" in error["message"]
    # Every field is listed with its rule, not only the first.
    assert [(f["field"], f["code"]) for f in error["fields"]] == [
        ("template", "unknown_template"),
        ("domain.webui", "domain_taken"),
    ]
    nothing_created()


@pytest.mark.django_db
def test_several_malformed_flags_are_listed_together(tenant):
    error = assert_error(
        provision(*RUNBOOK_DEPLOY[:-1], "webui", "--env", ANTHROPIC_KEY), "bad_flag", "env"
    )

    assert [f["field"] for f in error["fields"]] == ["env", "domain"]
    nothing_created()


@pytest.mark.django_db(transaction=True)
def test_coolify_down_fails_fast_then_a_rerun_resumes(
    sync_q, remote, coolify_sim, pocketbase, tenant, settings, fast_retries
):
    settings.COOLIFY_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    began = time.monotonic()
    error = assert_error(deploy_runbook_example(), "step_failed")
    assert time.monotonic() - began < 15

    assert "ensure_project" in error["message"] and "connect" in error["message"]
    stack = Stack.objects.get(stack_name=STACK)
    assert stack.status == StackStatus.ERROR
    failed = stack.operations.get()
    assert failed.status == OperationStatus.FAILED
    assert pocketbase.find_record(TENANT, STACK)["status"] == "error"

    settings.COOLIFY_URL = coolify_sim.url  # Coolify is back: the runbook says re-run
    output = assert_succeeded(deploy_runbook_example())

    assert set(output) == DEPLOY_KEYS and output["ok"] is True
    assert Stack.objects.filter(stack_name=STACK).get() == stack
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    assert len(coolify_sim.api.snapshot()["services"]) == 1
    resumed = stack.operations.exclude(pk=failed.pk).get()
    assert resumed.parameters.get("resumed") is True
    assert pocketbase.find_record(TENANT, STACK)["status"] == "running"


@pytest.mark.django_db(transaction=True)
def test_a_failed_deploy_rerun_adopts_its_service_instead_of_making_a_second(
    sync_q, remote, coolify_sim, pocketbase, tenant, fast_retries
):
    coolify_sim.add_fault(
        Fault(path=r"/api/v1/services/[a-z0-9]+/start", method="POST", kind="error", times=None)
    )
    error = assert_error(deploy_runbook_example(), "step_failed")
    assert "start" in error["message"]
    stack = Stack.objects.get(stack_name=STACK)
    service_uuid = stack.coolify_service_uuid
    assert service_uuid and stack.status == StackStatus.ERROR

    coolify_sim.clear_faults()
    output = assert_succeeded(provision(*RUNBOOK_DEPLOY))  # the stored secrets are kept

    assert output["service_uuid"] == service_uuid
    [service] = coolify_sim.api.snapshot()["services"]
    assert service["uuid"] == service_uuid
    assert service["envs"]["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert Stack.objects.filter(stack_name=STACK).count() == 1


@pytest.mark.django_db
def test_rerunning_with_other_flags_does_not_resume(tenant, make_stack):
    make_stack(
        tenant,
        STACK,
        status=StackStatus.ERROR,
        domains={"webui": DOMAIN},
        secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY},
    )
    args = [*RUNBOOK_DEPLOY]
    args[args.index(TEMPLATE)] = "telegram-bot"

    assert_error(provision(*args), "stack_exists", "template")
    assert not Operation.objects.exists()


# --- as a real process: exit codes, stdin -----------------------------------------------------


def manage_provision(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    merge_stderr: bool = False,
):
    """`manage.py provision` as a process; `merge_stderr` captures as `2>&1` does."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "provision", *args],
        env=environment,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        timeout=120,
    )


def process_error(result: subprocess.CompletedProcess, code: str) -> dict[str, Any]:
    assert result.returncode != 0, result.stdout + result.stderr
    output = json.loads(result.stdout)
    assert set(output) == {"ok", "error"} and output["ok"] is False
    assert output["error"]["code"] == code
    assert output["error"]["message"]
    return output["error"]


@pytest.mark.django_db(transaction=True)
def test_an_unknown_option_exits_non_zero_with_the_json_error(tenant):
    result = manage_provision(*RUNBOOK_DEPLOY, "--wait-forever")

    error = process_error(result, "bad_flag")
    assert set(error) == {"code", "message"}
    assert "--wait-forever" in error["message"]
    nothing_created()


@pytest.mark.django_db(transaction=True)
def test_a_mistyped_env_flag_does_not_print_the_secret(tenant):
    """`--env KEY value` (a space for the `=`) is a likely typo; argparse's message repeats the
    stray value, and the command prints it as the error message."""
    result = manage_provision(*RUNBOOK_DEPLOY, "--env", "ANTHROPIC_API_KEY", ANTHROPIC_KEY)

    process_error(result, "bad_flag")
    assert ANTHROPIC_KEY not in result.stdout + result.stderr


def two_bad_fields(make_stack) -> list[str]:
    """A deploy with an unknown template and a domain another stack holds."""
    make_stack(
        "customer-999", "customer-999-main", status=StackStatus.RUNNING, domains={"webui": DOMAIN}
    )
    args = [*RUNBOOK_DEPLOY, *RUNBOOK_ENV]
    args[args.index(TEMPLATE)] = "openclaw-agnet"
    return args


@pytest.mark.django_db(transaction=True)
def test_two_bad_fields_print_one_json_object_naming_both_and_nothing_on_stderr(tenant, make_stack):
    result = manage_provision(*two_bad_fields(make_stack))

    error = process_error(result, "validation_failed")
    assert [f["field"] for f in error["fields"]] == ["template", "domain.webui"]
    assert error["field"] == "template"
    assert result.stderr == ""  # not the CommandError line as well
    assert_no_secret(result.stdout)
    nothing_created()


@pytest.mark.django_db(transaction=True)
def test_verbose_adds_a_human_line_on_stderr(tenant, make_stack):
    result = manage_provision(*two_bad_fields(make_stack), "--verbose")

    error = process_error(result, "validation_failed")
    assert [f["field"] for f in error["fields"]] == ["template", "domain.webui"]
    [line] = result.stderr.splitlines()
    assert line.startswith("error [validation_failed]: template: Unknown template")
    assert "domain.webui:" in line
    assert_no_secret(result.stderr)


@pytest.mark.django_db(transaction=True)
def test_stdout_is_one_json_document_when_a_task_is_enqueued(tenant):
    """django-q logs "Enqueued …" when the deploy is queued; even with stderr folded into
    stdout (`2>&1`, as many scripts and CI steps capture) the output parses as one document."""
    merged = manage_provision(*RUNBOOK_DEPLOY, *RUNBOOK_ENV, "--no-wait", merge_stderr=True)

    assert merged.returncode == 0, merged.stdout
    output = json.loads(merged.stdout)  # exactly one JSON document, nothing around it
    operation = Operation.objects.get()
    assert output["queued"] is True and output["operation_id"] == operation.pk
    assert "Enqueued" not in merged.stdout
    assert_no_secret(merged.stdout)

    # The log line is real: --verbose lets it through, on stderr, never on stdout.
    second = [*RUNBOOK_DEPLOY[:-1], "webui=second.customer123.com"]
    second[second.index(STACK)] = "customer-123-second"
    verbose = manage_provision(*second, *RUNBOOK_ENV, "--no-wait", "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert json.loads(verbose.stdout)["queued"] is True
    assert "Enqueued" in verbose.stderr and "Enqueued" not in verbose.stdout


@pytest.mark.django_db(transaction=True)
def test_the_runbook_flow_as_a_process(coolify_sim, pocketbase_server, pocketbase, tenant):
    remote_env = {
        "COOLIFY_URL": coolify_sim.url,
        "COOLIFY_TOKEN": SIM_TOKEN,
        "POCKETBASE_URL": pocketbase_server.url,
        "POCKETBASE_EMAIL": PB_EMAIL,
        "POCKETBASE_PASSWORD": PB_PASSWORD,
        "PROVISION_POLL_INTERVAL": "0.05",
        "PROVISION_HEALTH_TIMEOUT": "20",
        "PROVISION_DELETE_TIMEOUT": "20",
        "Q_SYNC": "true",  # the operation runs inside the command, as a worker would
    }
    env_lines = f"ANTHROPIC_API_KEY={ANTHROPIC_KEY}\nTELEGRAM_BOT_TOKEN={TELEGRAM_TOKEN}\n"

    dry = manage_provision(*RUNBOOK_DEPLOY, "--env-file", "-", "--dry-run", stdin=env_lines)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert json.loads(dry.stdout)["dry_run"] is True

    deploy = manage_provision(*RUNBOOK_DEPLOY, "--env-file", "-", env=remote_env, stdin=env_lines)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    deployed = json.loads(deploy.stdout)
    assert set(deployed) == DEPLOY_KEYS and deployed["ok"] is True
    assert deployed["pocketbase_id"] == pocketbase.find_record(TENANT, STACK)["id"]
    stack = Stack.objects.get(stack_name=STACK)
    assert stack.status == StackStatus.RUNNING
    assert stack.secrets.get(key="ANTHROPIC_API_KEY").reveal() == ANTHROPIC_KEY
    assert stack.operations.get().requested_by_repr == CLI_ACTOR

    listing = manage_provision("list", "--tenant", TENANT)
    assert listing.returncode == 0
    assert [s["status"] for s in json.loads(listing.stdout)["stacks"]] == ["running"]

    unconfirmed = manage_provision(*DELETE, env=remote_env)  # stdin is /dev/null: no terminal
    process_error(unconfirmed, "confirmation_required")
    assert not stack.operations.filter(kind=OperationKind.DELETE).exists()

    delete = manage_provision(*DELETE, "--yes", env=remote_env)
    assert delete.returncode == 0, delete.stdout + delete.stderr
    assert json.loads(delete.stdout)["deleted"]["pocketbase_id"] == deployed["pocketbase_id"]
    stack.refresh_from_db()
    assert stack.status == StackStatus.DELETED
    assert coolify_sim.api.snapshot()["services"] == []
    assert pocketbase.find_record(TENANT, STACK) is None

    for result in (dry, deploy, listing, unconfirmed, delete):
        assert_no_secret(result.stdout + result.stderr)
