"""Faults that must be survived: the simulator's fault injection and the real PocketBase.

Every case ends with the same question: do cfadmin, the simulated Coolify and PocketBase agree?
Exactly one Coolify service per deployed stack, recorded on the stack and in PocketBase; after a
delete nothing left anywhere; after a failure, whatever exists remotely is recorded on the stack
(and PocketBase says `error`); and no secret value in errors, steps, audit events or logs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import OperationalError, connection, connections
from django_q.exceptions import TimeoutException

from cfadmin.models import AuditAction, AuditEvent
from stacks.choices import OperationKind, OperationStatus, StackStatus, StepOutcome
from stacks.clients.coolify import CoolifyClient
from stacks.clients.pocketbase import PocketBaseClient
from stacks.compose import load_manifest
from stacks.coolify_simulator.server import Fault
from stacks.models import Operation, OperationStep, PocketBaseOutboxEntry, Stack
from stacks.provisioning import OperationRunner, Remote, deploy_steps, run_operation
from stacks.provisioning.recovery import recover_stale_operations
from stacks.remote.outbox import drain
from stacks.services import OperationRefused, request_operation
from tests.conftest import PB_EMAIL, PB_PASSWORD, SIM_TOKEN, brief_sleep, no_sleep

pytestmark = pytest.mark.integration

TENANT = "customer-123"
STACK_NAME = "customer-123-main"
PROJECT_NAME = "customer-123-project"
DOMAIN = "demo.customer123.com"
ANTHROPIC_KEY = "sk-test-anthropic-faults-0123456789abcdef"
TELEGRAM_TOKEN = "987654321:test-telegram-faults-token-value"
SECRET_VALUES = (ANTHROPIC_KEY, TELEGRAM_TOKEN)

CLIENT_TIMEOUT = 0.25  # the Coolify client's timeout in the fault matrix
FAULT_DELAY = 0.6  # a `timeout` fault answers (with a reset) only after this: past the client's
HEALTH_TIMEOUT = 1.5  # how long a run waits for running:healthy / for a deleted service to go
DELETE_TIMEOUT = 1.5
# How long a check of the simulated Coolify waits for work it queued to land: a start job can
# still be queued when cfadmin has seen the service running (tests/conftest.py SIM_TIMINGS).
SETTLE_TIMEOUT = 3.0

UUID = "[A-Za-z0-9]+"


# --- helpers ----------------------------------------------------------------------------------


def faults_stack(make_stack) -> Stack:
    return make_stack(
        TENANT,
        STACK_NAME,
        template_name="openclaw-agent",
        project_name=PROJECT_NAME,
        domains={"webui": DOMAIN},
        secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN},
    )


def run(operation: Operation, remote: Remote, **options: Any) -> Operation:
    """Run a queued operation to its end in this thread, fast: pauses of at most 10 ms, short
    waits."""
    options = {
        "sleep": brief_sleep,
        "poll_interval": 0.02,
        "health_timeout": HEALTH_TIMEOUT,
        "delete_timeout": DELETE_TIMEOUT,
        **options,
    }
    assert run_operation(operation.pk, remote=remote, **options)
    operation.refresh_from_db()
    return operation


def deploy(stack: Stack, remote: Remote, actor: Any) -> Operation:
    stack.refresh_from_db()
    return run(request_operation(stack, OperationKind.DEPLOY, actor=actor), remote)


def delete(stack: Stack, remote: Remote, actor: Any) -> Operation:
    stack.refresh_from_db()
    return run(request_operation(stack, OperationKind.DELETE, actor=actor), remote)


def services_named(coolify_sim, name: str = STACK_NAME) -> list[dict[str, Any]]:
    return [s for s in coolify_sim.api.snapshot()["services"] if s["name"] == name]


def projects_named(coolify_sim, name: str = PROJECT_NAME) -> list[dict[str, Any]]:
    return [p for p in coolify_sim.api.snapshot()["projects"] if p["name"] == name]


def settled(
    coolify_sim, ready: Callable[[dict[str, Any]], bool], timeout: float = SETTLE_TIMEOUT
) -> dict[str, Any]:
    """The simulator's state once `ready(state)` holds, or the last one read after `timeout`.

    Coolify acts through queued jobs and stores container statuses only at its periodic
    checks, so what it shows right after an operation may still be on its way (a start job
    that runs after cfadmin saw the service running makes it read `starting:unhealthy`, then
    `exited`, then `running:*` again). The caller asserts on what this returns.
    """
    deadline = time.monotonic() + timeout
    while True:
        state = coolify_sim.api.snapshot()
        if ready(state) or time.monotonic() >= deadline:
            return state
        time.sleep(0.02)


def wait_until_gone(coolify_sim, name: str) -> None:
    """Coolify deletes in the background (the simulator: 0.05 s here)."""
    deadline = time.monotonic() + 5
    while services_named(coolify_sim, name) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert services_named(coolify_sim, name) == []


def fired(coolify_sim, method: str, path_pattern: str) -> list[dict[str, Any]]:
    """The faults with this method and path pattern that went off.

    (Each `fired` entry spreads the Fault over the request's own method and path, so it holds
    the fault's pattern, not the path that was called.)
    """
    return [f for f in coolify_sim.fired if f["method"] == method and f["path"] == path_pattern]


def assert_deployed(stack: Stack, coolify_sim, pocketbase: PocketBaseClient) -> None:
    """One running service in Coolify, the same one on the stack and in PocketBase."""
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING, stack.status_detail
    # cfadmin itself waited for the service to come up: its last status read said running.
    last = Operation.objects.filter(stack=stack).latest("pk")
    waited = last.steps.filter(name="wait_healthy").order_by("position").last()
    assert waited is not None and waited.outcome == StepOutcome.DONE, last.error
    assert waited.detail.startswith("status running:"), waited.detail
    # ... and Coolify settles there (a start job still queued may take it through a restart).
    state = settled(
        coolify_sim,
        lambda s: (
            [x["status"] for x in s["services"] if x["name"] == STACK_NAME] == ["running:healthy"]
        ),
    )
    [service] = [s for s in state["services"] if s["name"] == STACK_NAME]  # never two
    assert service["uuid"] == stack.coolify_service_uuid
    assert service["status"] == "running:healthy"
    assert not service["deleting"]
    assert service["envs"]["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY  # nothing lost
    assert service["envs"]["TELEGRAM_BOT_TOKEN"] == TELEGRAM_TOKEN
    hosts = [urlsplit(a["fqdn"]).hostname for a in service["applications"] if a["fqdn"]]
    assert hosts == [DOMAIN]
    [project] = [p for p in state["projects"] if p["name"] == PROJECT_NAME]
    assert project["uuid"] == stack.coolify_project_uuid
    [record] = pocketbase.list_records(tenant=TENANT)
    assert record["stack_name"] == STACK_NAME
    assert record["status"] == "running"
    assert record["service_uuid"] == stack.coolify_service_uuid
    assert record["project_uuid"] == stack.coolify_project_uuid
    assert record["id"] == stack.pocketbase_id
    assert record["domains"] == [DOMAIN]


def assert_deleted(stack: Stack, coolify_sim, pocketbase: PocketBaseClient) -> None:
    """Nothing left: no service, no volume, no PocketBase record; the stack is a tombstone."""
    stack.refresh_from_db()
    assert stack.status == StackStatus.DELETED, stack.status_detail
    state = coolify_sim.api.snapshot()
    assert state["services"] == []
    assert state["volumes"] == []
    gone = [d for d in state["deleted_services"] if d["name"] == STACK_NAME]
    assert gone and all(d["delete_volumes"] for d in gone)
    assert pocketbase.list_records(tenant=TENANT) == []
    assert not stack.domains.filter(released_at__isnull=True).exists()


def assert_failed_cleanly(operation: Operation, step: str) -> Stack:
    """Failed, not stuck; the stack in error; the error names the step and what to do next."""
    assert operation.status == OperationStatus.FAILED
    assert operation.finished_at is not None
    assert operation.error.startswith(f"Step '{step}' failed: "), operation.error
    reason, _, hint = operation.error.partition(". Next: ")
    assert reason.strip() and len(hint.strip()) > 20, operation.error
    assert operation.result["ok"] is False
    assert operation.result["error"]["step"] == step
    assert operation.result["error"]["hint"]
    failed_step = operation.steps.get(outcome=StepOutcome.FAILED)
    assert failed_step.name == step
    stack = Stack.objects.get(pk=operation.stack_id)
    assert stack.status == StackStatus.ERROR
    assert f"Step '{step}' failed" in stack.status_detail
    assert not Operation.objects.filter(stack=stack).in_flight().exists()
    return stack


def assert_recorded_after_failure(
    stack: Stack, coolify_sim, pocketbase: PocketBaseClient, *, kind: str
) -> None:
    """Whatever exists in Coolify is on the stack; PocketBase says `error` with the same uuid."""
    stack.refresh_from_db()
    services = [s for s in services_named(coolify_sim) if not s["deleting"]]
    assert len(services) <= 1, services
    if services:
        assert services[0]["uuid"] == stack.coolify_service_uuid, "orphaned Coolify service"
    elif kind == OperationKind.DEPLOY:
        assert stack.coolify_service_uuid == ""  # no uuid pointing at nothing
    projects = projects_named(coolify_sim)
    assert len(projects) <= 1, projects
    if projects:
        assert projects[0]["uuid"] == stack.coolify_project_uuid, "orphaned Coolify project"
    [record] = pocketbase.list_records(tenant=TENANT)
    assert record["status"] == "error"
    assert record["service_uuid"] == stack.coolify_service_uuid


def assert_no_secret_leaked(stack: Stack, pocketbase: PocketBaseClient, caplog) -> None:
    texts = [stack.status_detail, caplog.text, json.dumps(pocketbase.list_records())]
    for operation in Operation.objects.filter(stack=stack):
        texts += [operation.error, json.dumps(operation.result), json.dumps(operation.parameters)]
    texts += list(
        OperationStep.objects.filter(operation__stack=stack).values_list("detail", flat=True)
    )
    for event in AuditEvent.objects.all():
        texts += [event.message, event.target_repr, json.dumps(event.changes)]
    everything = "\n".join(texts)
    for secret in SECRET_VALUES:
        assert secret not in everything


@pytest.fixture(autouse=True)
def no_server_cache(monkeypatch):
    """The server lookup is cached per Coolify URL; a new simulator may reuse an old port."""
    monkeypatch.setattr(deploy_steps, "_server_cache", {})


@pytest.fixture(autouse=True)
def fast_personas(settings):
    """The personas' passwords are never checked here: skip the slow production hash."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fast_remote(remote, coolify_sim, caplog):
    """The `remote` fixture's PocketBase, with a Coolify client that gives up after 0.25 s."""
    caplog.set_level(logging.INFO)
    coolify = CoolifyClient(coolify_sim.url, SIM_TOKEN, timeout=CLIENT_TIMEOUT, sleep=no_sleep)
    yield Remote(coolify=coolify, pocketbase=remote.pocketbase)
    coolify.close()


# --- the fault matrix -------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str  # a regex matched against the whole path
    step: str  # the step that makes the call
    write: bool
    # The call is made only when a create's answer was lost: the step's retry then looks the
    # service up by name (GET /projects/<uuid>, GET /services). A first fault sets that up.
    after_lost_create: bool = False


# A created service whose answer never came back: the situation the by-name lookup is for.
LOST_CREATE = Fault(path=r"/api/v1/services", method="POST", kind="reset", phase="after")

DEPLOY_CALLS = [
    Call("list_projects", "GET", r"/api/v1/projects", "ensure_project", write=False),
    Call("create_project", "POST", r"/api/v1/projects", "ensure_project", write=True),
    Call(
        "get_project",
        "GET",
        rf"/api/v1/projects/{UUID}",
        "create_service",
        write=False,
        after_lost_create=True,
    ),
    Call("list_servers", "GET", r"/api/v1/servers", "create_service", write=False),
    Call("create_service", "POST", r"/api/v1/services", "create_service", write=True),
    Call(
        "list_services_lookup",
        "GET",
        r"/api/v1/services",
        "create_service",
        write=False,
        after_lost_create=True,
    ),
    Call("set_envs", "PATCH", rf"/api/v1/services/{UUID}/envs/bulk", "set_env", write=True),
    Call("start_service", "POST", rf"/api/v1/services/{UUID}/start", "start", write=True),
    Call("list_services", "GET", r"/api/v1/services", "wait_healthy", write=False),
]
DELETE_CALLS = [
    Call("stop_service", "POST", rf"/api/v1/services/{UUID}/stop", "stop", write=True),
    Call("delete_service", "DELETE", rf"/api/v1/services/{UUID}", "delete_service", write=True),
    Call("get_service", "GET", rf"/api/v1/services/{UUID}", "confirm_deleted", write=False),
]
FAULT_KINDS = {
    "timeout": {"kind": "timeout", "delay": FAULT_DELAY},
    "500": {"kind": "error", "status": 500},
    "502": {"kind": "error", "status": 502},
    "503": {"kind": "error", "status": 503},
    "reset": {"kind": "reset"},
}
# Persistent faults that a run still survives, because it never needs the failing answer:
# a create whose answer is always lost is looked up by name on the step's retry instead of being
# repeated; a delete whose status reads always fail is confirmed by asking Coolify to delete the
# service again half-way through the wait, which answers 404 once it is gone.
SURVIVES_PERSISTENT = {
    ("create_project", "after"),
    ("create_service", "after"),
    ("get_service", "before"),
}


def matrix(calls: list[Call]) -> list[Any]:
    cases = []
    for call in calls:
        for phase in ("before", "after") if call.write else ("before",):
            for kind_name, kind in FAULT_KINDS.items():
                for times in (1, None):
                    label = "once" if times else "always"
                    cases.append(
                        pytest.param(
                            call, phase, kind, times, id=f"{call.name}-{phase}-{kind_name}-{label}"
                        )
                    )
    return cases


def add_fault(coolify_sim, call: Call, phase: str, kind: dict[str, Any], times: int | None):
    if call.after_lost_create:
        coolify_sim.add_fault(LOST_CREATE)
    coolify_sim.add_fault(
        Fault(path=call.path, method=call.method, phase=phase, times=times, **kind)
    )


def assert_fired(coolify_sim, call: Call, times: int | None) -> None:
    hits = fired(coolify_sim, call.method, call.path)
    if times is None:
        assert hits, f"the fault on {call.method} {call.path} never fired"
    else:
        assert len(hits) == times, hits


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("call", "phase", "kind", "times"), matrix(DEPLOY_CALLS))
def test_deploy_survives_a_fault_or_fails_cleanly_and_a_new_deploy_completes(
    call, phase, kind, times, make_stack, fast_remote, coolify_sim, pocketbase, operator, caplog
):
    stack = faults_stack(make_stack)
    add_fault(coolify_sim, call, phase, kind, times)

    operation = deploy(stack, fast_remote, operator)

    assert_fired(coolify_sim, call, times)
    if times == 1 or (call.name, phase) in SURVIVES_PERSISTENT:
        assert operation.status == OperationStatus.SUCCEEDED, operation.error
        assert_deployed(stack, coolify_sim, pocketbase)
    else:
        stack = assert_failed_cleanly(operation, call.step)
        assert "Coolify" in operation.error
        if call.after_lost_create:
            # The service was made but its uuid never came back: the stack says a create was
            # requested, and the next attempt adopts the service by name (checked below).
            [made] = services_named(coolify_sim)
            assert stack.coolify_service_uuid == ""
            assert stack.service_create_requested_at is not None
            [record] = pocketbase.list_records(tenant=TENANT)
            assert record["status"] == "error"
        else:
            assert_recorded_after_failure(stack, coolify_sim, pocketbase, kind=OperationKind.DEPLOY)

        coolify_sim.clear_faults()
        again = deploy(stack, fast_remote, operator)

        assert again.status == OperationStatus.SUCCEEDED, (
            again.error,
            list(again.steps.values_list("name", "outcome", "detail")),
        )
        assert again.pk != operation.pk
        assert_deployed(stack, coolify_sim, pocketbase)
        if call.after_lost_create:
            assert stack.coolify_service_uuid == made["uuid"]
    assert_no_secret_leaked(stack, pocketbase, caplog)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("call", "phase", "kind", "times"), matrix(DELETE_CALLS))
def test_delete_survives_a_fault_or_fails_cleanly_and_a_new_delete_completes(
    call, phase, kind, times, make_stack, fast_remote, coolify_sim, pocketbase, admin_role, caplog
):
    stack = faults_stack(make_stack)
    assert deploy(stack, fast_remote, admin_role).status == OperationStatus.SUCCEEDED
    assert_deployed(stack, coolify_sim, pocketbase)
    add_fault(coolify_sim, call, phase, kind, times)

    operation = delete(stack, fast_remote, admin_role)

    assert_fired(coolify_sim, call, times)
    if times == 1 or (call.name, phase) in SURVIVES_PERSISTENT:
        assert operation.status == OperationStatus.SUCCEEDED, operation.error
        assert_deleted(stack, coolify_sim, pocketbase)
    else:
        stack = assert_failed_cleanly(operation, call.step)
        assert_recorded_after_failure(stack, coolify_sim, pocketbase, kind=OperationKind.DELETE)
        assert stack.coolify_service_uuid  # the service (if any is left) is still on record
        assert "Coolify" in operation.error

        coolify_sim.clear_faults()
        again = delete(stack, fast_remote, admin_role)

        assert again.status == OperationStatus.SUCCEEDED, again.error
        assert_deleted(stack, coolify_sim, pocketbase)
    assert_no_secret_leaked(stack, pocketbase, caplog)


# --- PocketBase down during deploy ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_pocketbase_down_during_deploy_leaves_the_stack_running_and_the_record_queued(
    make_stack, remote, coolify_sim, pocketbase, operator, caplog, closed_port
):
    """The stack's status follows Coolify: PocketBase being down does not make it `error`.
    Its record waits in the outbox and reaches PocketBase once it answers."""
    caplog.set_level(logging.INFO)
    stack = faults_stack(make_stack)
    # Nobody listens on this loopback port: every PocketBase call is refused.
    down = PocketBaseClient(
        f"http://127.0.0.1:{closed_port}",
        email=PB_EMAIL,
        password=PB_PASSWORD,
        timeout=1,
        sleep=no_sleep,
    )
    try:
        first = deploy(stack, Remote(coolify=remote.coolify, pocketbase=down), operator)
    finally:
        down.close()

    assert first.status == OperationStatus.SUCCEEDED, first.error
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    sync = first.steps.get(name="sync_pocketbase")
    assert sync.outcome == StepOutcome.DEFERRED
    assert sync.detail.startswith("record queued for PocketBase")
    assert "cannot connect" in sync.detail
    [service] = services_named(coolify_sim)
    assert service["uuid"] == stack.coolify_service_uuid
    assert stack.pocketbase_id == ""
    assert pocketbase.list_records() == []  # it never got there ...
    [entry] = PocketBaseOutboxEntry.objects.pending()  # ... but it is not lost
    assert entry.record["status"] == "running" and entry.attempts == 1

    report = drain(remote.pocketbase, now=entry.next_attempt_at)  # PocketBase answers again

    assert report.delivered == [entry.pk]
    assert_deployed(stack, coolify_sim, pocketbase)
    assert_no_secret_leaked(stack, pocketbase, caplog)


# --- the worker killed mid-operation ----------------------------------------------------------


def die_after(method: str):
    """The worker dies right after Coolify carried out the call, before cfadmin noted it."""

    def install(monkeypatch) -> None:
        real = getattr(CoolifyClient, method)

        def call_then_die(self, *args, **kwargs):
            real(self, *args, **kwargs)
            raise TimeoutException()  # django-q2's task timeout: a SystemExit

        monkeypatch.setattr(CoolifyClient, method, call_then_die)

    return install


def die_in_start(monkeypatch) -> None:
    def die(self):
        raise TimeoutException()

    monkeypatch.setattr(OperationRunner, "start", die)


# Where the worker dies: the step it is in, and how it dies there.
KILLS = {
    "after_create_project": ("ensure_project", die_after("create_project")),
    "after_create_service": ("create_service", die_after("create_service")),
    "in_start": ("start", die_in_start),
    "after_delete_service": ("delete_service", die_after("delete_service")),
}
DEPLOY_KILLS = ["after_create_project", "after_create_service", "in_start"]


def run_and_kill(operation: Operation, remote: Remote, monkeypatch, where: str) -> Operation:
    step, install = KILLS[where]
    with monkeypatch.context() as patch:
        install(patch)
        with pytest.raises(SystemExit):
            run_operation(operation.pk, remote=remote, sleep=brief_sleep, poll_interval=0.02)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.RUNNING  # what a dead worker leaves behind
    assert operation.current_step == step
    return operation


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", DEPLOY_KILLS)
def test_a_killed_worker_operation_is_requeued_and_resumes_without_a_second_service(
    where, make_stack, remote, coolify_sim, pocketbase, operator, monkeypatch, caplog
):
    stack = faults_stack(make_stack)
    operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
    run_and_kill(operation, remote, monkeypatch, where)
    assert len(services_named(coolify_sim)) == (0 if where == "after_create_project" else 1)

    # A live operation (fresh heartbeat) is left alone.
    untouched: list[int] = []
    assert recover_stale_operations(enqueue=untouched.append, stale_after=300) == {
        "requeued": [],
        "failed": [],
    }
    assert untouched == []

    queued: list[int] = []
    report = recover_stale_operations(enqueue=queued.append, stale_after=0, max_attempts=3)

    assert report == {"requeued": [operation.pk], "failed": []}
    assert queued == [operation.pk]  # enqueued once the requeue committed
    operation.refresh_from_db()
    assert operation.status == OperationStatus.QUEUED

    operation = run(operation, remote)

    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert operation.attempts == 2
    assert_deployed(stack, coolify_sim, pocketbase)  # one project, one service
    assert_no_secret_leaked(stack, pocketbase, caplog)


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_keeps_dying_gets_the_operation_failed_never_left_running(
    make_stack, remote, coolify_sim, pocketbase, operator, monkeypatch, caplog
):
    stack = faults_stack(make_stack)
    operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
    queued: list[int] = []

    run_and_kill(operation, remote, monkeypatch, "after_create_service")
    report = recover_stale_operations(enqueue=queued.append, stale_after=0, max_attempts=2)
    assert report == {"requeued": [operation.pk], "failed": []}
    run_and_kill(operation, remote, monkeypatch, "in_start")
    report = recover_stale_operations(enqueue=queued.append, stale_after=0, max_attempts=2)

    assert report == {"requeued": [], "failed": [operation.pk]}
    assert queued == [operation.pk]
    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert operation.finished_at is not None
    assert "worker stopped during step 'start' 2 times" in operation.error
    assert "Next: check the worker's logs" in operation.error
    stack.refresh_from_db()
    assert stack.status == StackStatus.ERROR
    assert "worker stopped" in stack.status_detail
    assert AuditEvent.objects.filter(
        action=AuditAction.OPERATION_RESULT, target_id=str(operation.pk)
    ).exists()
    # Nothing orphaned: the one service made is on the stack (adopted by the second attempt).
    [service] = services_named(coolify_sim)
    assert service["uuid"] == stack.coolify_service_uuid
    # ... and nothing stuck: a new deploy completes it with that same service.
    again = deploy(stack, remote, operator)
    assert again.status == OperationStatus.SUCCEEDED, again.error
    assert_deployed(stack, coolify_sim, pocketbase)
    assert stack.coolify_service_uuid == service["uuid"]
    assert_no_secret_leaked(stack, pocketbase, caplog)


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_delete_is_requeued_and_finishes_leaving_nothing(
    make_stack, remote, coolify_sim, pocketbase, admin_role, monkeypatch, caplog
):
    stack = faults_stack(make_stack)
    assert deploy(stack, remote, admin_role).status == OperationStatus.SUCCEEDED
    operation = request_operation(stack, OperationKind.DELETE, actor=admin_role)
    run_and_kill(operation, remote, monkeypatch, "after_delete_service")
    queued: list[int] = []

    report = recover_stale_operations(enqueue=queued.append, stale_after=0, max_attempts=3)

    assert report == {"requeued": [operation.pk], "failed": []}
    assert queued == [operation.pk]
    operation = run(operation, remote)
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert_deleted(stack, coolify_sim, pocketbase)
    assert_no_secret_leaked(stack, pocketbase, caplog)


@pytest.mark.django_db(transaction=True)
def test_a_delete_whose_worker_keeps_dying_leaves_pocketbase_saying_error(
    make_stack, remote, coolify_sim, pocketbase, admin_role, monkeypatch
):
    """Failed by recovery as by a step: PocketBase must not go on saying `running`.

    Here Coolify already deleted the service when the worker died for the last time; other
    parts of the platform read PocketBase, which would still show a running stack.
    """
    stack = faults_stack(make_stack)
    assert deploy(stack, remote, admin_role).status == OperationStatus.SUCCEEDED
    operation = request_operation(stack, OperationKind.DELETE, actor=admin_role)
    run_and_kill(operation, remote, monkeypatch, "after_delete_service")

    report = recover_stale_operations(enqueue=lambda pk: None, stale_after=0, max_attempts=1)

    assert report == {"requeued": [], "failed": [operation.pk]}
    stack.refresh_from_db()
    assert stack.status == StackStatus.ERROR
    wait_until_gone(coolify_sim, STACK_NAME)  # Coolify finished the queued delete meanwhile
    [record] = pocketbase.list_records(tenant=TENANT)
    assert record["status"] == "error"  # as _fail() reports it for a failed step


# --- two deploy requests at once --------------------------------------------------------------


def wait_when_table_locked(execute, sql, params, many, context):
    """Wait for a lock as a file database would, instead of failing at once.

    pytest-django's SQLite test database lives in memory with a shared cache, where a lock
    held by another connection fails immediately ("database table is locked") instead of
    waiting out the busy timeout that cfadmin's file database has. The statement that failed
    did nothing, so running it again is what that timeout would have done.
    """
    deadline = time.monotonic() + 20
    while True:
        try:
            return execute(sql, params, many, context)
        except OperationalError as error:
            if "table is locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.002)


def in_threads(target, count: int = 2) -> list[Any]:
    """Run target(barrier) in `count` threads that start together; their results or errors."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def body(index: int) -> None:
        try:
            with connection.execute_wrapper(wait_when_table_locked):
                results[index] = target(barrier)
        except BaseException as error:
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_deploy_requests_at_once_make_one_operation_and_the_other_is_refused(
    make_stack, remote, coolify_sim, pocketbase, operator
):
    stack = faults_stack(make_stack)

    def request(barrier):
        mine = Stack.objects.get(pk=stack.pk)
        barrier.wait()
        return request_operation(mine, OperationKind.DEPLOY, actor=operator)

    results = in_threads(request)

    made = [r for r in results if isinstance(r, Operation)]
    refused = [r for r in results if isinstance(r, OperationRefused)]
    assert len(made) == 1 and len(refused) == 1, results
    assert refused[0].code == "operation_in_flight"
    assert Operation.objects.filter(stack=stack).count() == 1

    operation = run(made[0], remote)
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert_deployed(stack, coolify_sim, pocketbase)


@pytest.mark.django_db(transaction=True)
def test_two_workers_given_the_same_operation_run_it_once_and_make_one_service(
    make_stack, remote, coolify_sim, pocketbase, operator
):
    stack = faults_stack(make_stack)
    operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)

    def work(barrier):
        coolify = CoolifyClient(coolify_sim.url, SIM_TOKEN, timeout=2, sleep=no_sleep)
        records = PocketBaseClient(
            remote.pocketbase.base_url,
            email=PB_EMAIL,
            password=PB_PASSWORD,
            timeout=5,
            sleep=no_sleep,
        )
        try:
            barrier.wait()
            return run_operation(
                operation.pk,
                remote=Remote(coolify=coolify, pocketbase=records),
                sleep=no_sleep,
                poll_interval=0.02,
                health_timeout=5.0,
            )
        finally:
            coolify.close()
            records.close()

    results = in_threads(work)

    assert sorted(results, key=repr) == [False, True], results  # exactly one claimed it
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert operation.attempts == 1
    assert operation.steps.filter(name="create_service").count() == 1
    assert_deployed(stack, coolify_sim, pocketbase)
    assert len(coolify_sim.api.snapshot()["services"]) == 1


# --- a token without the `deploy` ability -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_token_without_the_deploy_ability_fails_at_start_naming_the_ability(
    make_stack, remote, coolify_sim, pocketbase, operator, caplog
):
    caplog.set_level(logging.INFO)
    coolify_sim.api.add_token("no-deploy", {"read", "write"})
    stack = faults_stack(make_stack)
    limited = CoolifyClient(coolify_sim.url, "no-deploy", timeout=2, sleep=no_sleep)
    try:
        operation = deploy(stack, Remote(coolify=limited, pocketbase=pocketbase), operator)
    finally:
        limited.close()

    stack = assert_failed_cleanly(operation, "start")
    assert "Missing required permissions: deploy" in operation.error
    assert "Give the Coolify API token the 'deploy' ability" in operation.error
    assert "then retry" in operation.error
    assert operation.steps.filter(name="start").count() == 1  # a 403 is not retried
    # Nothing orphaned: the service made so far is on the stack and in PocketBase (as error).
    assert_recorded_after_failure(stack, coolify_sim, pocketbase, kind=OperationKind.DEPLOY)
    [service] = services_named(coolify_sim)
    assert service["uuid"] == stack.coolify_service_uuid
    assert service["status"] == "exited"

    again = deploy(stack, remote, operator)  # with a token that may deploy

    assert again.status == OperationStatus.SUCCEEDED, again.error
    assert_deployed(stack, coolify_sim, pocketbase)
    assert stack.coolify_service_uuid == service["uuid"]
    assert_no_secret_leaked(stack, pocketbase, caplog)


# --- a domain another Coolify service already uses --------------------------------------------

OTHER_COMPOSE = "services:\n  web:\n    image: nginx:1.27\n"
# The URL cfadmin sends for the stack's domain: https, with the container port
# (stacks/plan.py service_urls). Coolify compares URLs exactly (scheme, host and port; only a
# trailing `/` goes: checkDomainUsage in bootstrap/helpers/domains.php), so only this very
# string makes it answer 409: `https://demo.customer123.com` alone would not.
DOMAIN_URL = f"https://{DOMAIN}:{load_manifest('openclaw-agent').exposed['webui']}"


def occupy_domain(coolify_sim) -> str:
    """Another service in Coolify, made directly through the simulator's API, holding the URL
    cfadmin will ask for."""
    with CoolifyClient(coolify_sim.url, SIM_TOKEN, timeout=2, sleep=no_sleep) as root:
        project_uuid = root.create_project("someone-else")
        [environment] = root.get_project(project_uuid)["environments"]
        [server] = root.list_servers()
        created = root.create_service(
            project_uuid=project_uuid,
            server_uuid=server["uuid"],
            environment_name=environment["name"],
            name="someone-elses-app",
            description="not cfadmin's",
            compose=OTHER_COMPOSE,
            urls=[{"name": "web", "url": DOMAIN_URL}],
        )
    return created["uuid"]


@pytest.mark.django_db(transaction=True)
def test_a_domain_used_by_another_coolify_service_fails_with_a_domain_hint_leaving_nothing(
    make_stack, remote, coolify_sim, pocketbase, operator, caplog
):
    caplog.set_level(logging.INFO)
    other = occupy_domain(coolify_sim)
    stack = faults_stack(make_stack)

    operation = deploy(stack, remote, operator)

    stack = assert_failed_cleanly(operation, "create_service")
    assert "HTTP 409" in operation.error
    assert "domain" in operation.result["error"]["hint"].lower()
    assert operation.steps.filter(name="create_service").count() == 1  # a 409 is not retried
    assert services_named(coolify_sim) == []  # Coolify dropped the service it refused
    assert stack.coolify_service_uuid == ""  # and no uuid was recorded
    assert [s["uuid"] for s in coolify_sim.api.snapshot()["services"]] == [other]  # untouched
    assert_recorded_after_failure(stack, coolify_sim, pocketbase, kind=OperationKind.DEPLOY)

    # Once the domain is free, a new deploy completes.
    with CoolifyClient(coolify_sim.url, SIM_TOKEN, timeout=2, sleep=no_sleep) as root:
        root.delete_service(other)
    wait_until_gone(coolify_sim, "someone-elses-app")  # it keeps its domain until then
    again = deploy(stack, remote, operator)
    assert again.status == OperationStatus.SUCCEEDED, again.error
    assert_deployed(stack, coolify_sim, pocketbase)
    assert_no_secret_leaked(stack, pocketbase, caplog)


@pytest.mark.django_db(transaction=True)
def test_a_domain_conflict_error_names_the_domain_and_the_service_using_it(
    make_stack, remote, coolify_sim, operator
):
    """Coolify's 409 lists the conflicts; the operator must learn which domain and who has it."""
    occupy_domain(coolify_sim)
    stack = faults_stack(make_stack)

    operation = deploy(stack, remote, operator)

    assert operation.status == OperationStatus.FAILED
    assert "HTTP 409" in operation.error
    # Coolify's conflict names the URL as stored (with its port) and the service holding it.
    assert DOMAIN_URL in operation.error
    assert "someone-elses-app" in operation.error


# --- waits whose every poll failed ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_health_wait_whose_every_poll_failed_says_coolify_did_not_answer(
    make_stack, fast_remote, coolify_sim, operator
):
    """When no status poll got an answer, the error is Coolify's failure, not the service's.

    "service still 'unknown'" and "check the service's logs" send the operator to a service
    that may well be healthy, when it is Coolify's API that failed (here: every GET /services
    answered 500).
    """
    stack = faults_stack(make_stack)
    call = DEPLOY_CALLS[-1]  # GET /api/v1/services, polled by wait_healthy
    coolify_sim.add_fault(Fault(path=call.path, method=call.method, kind="error", times=None))

    operation = deploy(stack, fast_remote, operator)

    assert_failed_cleanly(operation, "wait_healthy")
    assert "HTTP 500" in operation.error
    assert "did not answer properly" in operation.result["error"]["hint"]
