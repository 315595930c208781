"""PocketBase outages lose nothing: with the Coolify simulator and the real PocketBase.

While PocketBase is down, operations still finish and stacks take the status Coolify gives them;
their records wait in the outbox (and reconcile does not call them drift). When PocketBase is
back, the drain writes each record's newest state, in order — also through a real worker.
"""

from __future__ import annotations

import time

import pytest

from stacks import reconcile
from stacks.choices import (
    DriftKind,
    OperationKind,
    OperationStatus,
    OutboxAction,
    OutboxState,
    StackStatus,
    StepOutcome,
)
from stacks.clients.pocketbase import PocketBaseClient
from stacks.local_pocketbase import free_port, start_pocketbase
from stacks.models import Operation, PocketBaseOutboxEntry, Stack
from stacks.provisioning import Remote, run_operation, settle_stack
from stacks.remote import outbox as pocketbase_outbox
from stacks.services import request_operation
from tests.conftest import PB_EMAIL, PB_PASSWORD, brief_sleep, no_sleep
from tests.integration.workers import Worker, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SECRET = "sk-test-outbox-0123456789abcdefghij"
CHANGES = 100


def new_stack(make_stack, n: int) -> Stack:
    return make_stack(
        f"customer-{n}",
        f"customer-{n}-main",
        domains={"webui": f"agent{n}.example.com"},
        secrets={"ANTHROPIC_API_KEY": SECRET},
    )


def closed_pocketbase(port: int) -> PocketBaseClient:
    """Nobody listens on this loopback port: every PocketBase call is refused."""
    return PocketBaseClient(
        f"http://127.0.0.1:{port}",
        email=PB_EMAIL,
        password=PB_PASSWORD,
        timeout=1,
        sleep=no_sleep,
    )


def run(stack: Stack, kind: str, remote: Remote, actor) -> Operation:
    stack.refresh_from_db()
    operation = request_operation(stack, kind, actor=actor)
    # Polls pause (brief_sleep): on a loaded machine a lagging delete polled at full speed is
    # answered 429 by the simulator's 200 calls a minute.
    assert run_operation(
        operation.pk, remote=remote, sleep=brief_sleep, poll_interval=0.05, health_timeout=5.0
    )
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    return operation


def record_drift(remote, pocketbase) -> list[dict]:
    run = reconcile.run_reconcile(actor="test", coolify=remote.coolify, pocketbase=pocketbase)
    assert run.error == ""
    return [
        d
        for d in run.drift
        if d["kind"]
        in (DriftKind.MISSING_RECORD, DriftKind.RECORD_DIFFERS, DriftKind.ORPHAN_RECORD)
    ]


def test_a_pocketbase_outage_through_100_changes_loses_nothing_and_keeps_their_order(
    make_stack, remote, coolify_sim, pocketbase, operator, admin_role, closed_port
):
    down = closed_pocketbase(closed_port)
    outage = Remote(coolify=remote.coolify, pocketbase=down)
    stacks = [new_stack(make_stack, n) for n in range(1, 5)]
    expected: dict[tuple[str, str], str] = {}  # each record's last change
    changes = 0

    def changed(stack: Stack, status: str) -> None:
        nonlocal changes
        changes += 1
        stack.refresh_from_db()
        assert stack.status == status, stack.status_detail  # cfadmin is right all along
        expected[(stack.tenant.slug, stack.stack_name)] = status

    try:
        # Real operations through the runner, PocketBase down all along.
        for stack in stacks:
            deploy = run(stack, OperationKind.DEPLOY, outage, operator)
            sync = deploy.steps.get(name="sync_pocketbase")
            assert sync.outcome == StepOutcome.DEFERRED, sync.detail
            assert sync.detail.startswith("record queued for PocketBase")
            changed(stack, StackStatus.RUNNING)
        run(stacks[0], OperationKind.STOP, outage, operator)
        changed(stacks[0], StackStatus.STOPPED)
        run(stacks[0], OperationKind.START, outage, operator)
        changed(stacks[0], StackStatus.RUNNING)
        run(stacks[1], OperationKind.STOP, outage, operator)
        changed(stacks[1], StackStatus.STOPPED)
        delete = run(stacks[3], OperationKind.DELETE, outage, admin_role)
        assert delete.steps.get(name="delete_pocketbase_record").outcome == StepOutcome.DEFERRED
        changed(stacks[3], StackStatus.DELETED)
        # A new stack of the deleted one's name: its record must outlive the queued delete.
        reborn = new_stack(make_stack, 4)
        run(reborn, OperationKind.DEPLOY, outage, operator)
        changed(reborn, StackStatus.RUNNING)
    finally:
        down.close()

    # The rest of the 100 through the same code path the runner's last step takes.
    while changes < CHANGES:
        stack = Stack.objects.get(pk=stacks[changes % 3].pk)
        status = StackStatus.RUNNING if stack.status == StackStatus.STOPPED else StackStatus.STOPPED
        settle_stack(stack, status, detail="test change")
        changed(stack, status)

    pending = PocketBaseOutboxEntry.objects.pending()
    assert pending.count() == CHANGES, list(
        PocketBaseOutboxEntry.objects.exclude(state=OutboxState.PENDING).values(
            "id", "tenant_slug", "state", "attempts", "last_error", "delivered_at", "created_at"
        )
    )
    assert pocketbase.list_records() == []  # nothing got there while it was down
    # Reconcile, with PocketBase up again, sees records on their way, not drift.
    assert record_drift(remote, pocketbase) == []

    first: dict[tuple[str, str], int] = {}
    newest: dict[tuple[str, str], int] = {}
    for entry in pending.order_by("id"):
        first.setdefault(entry.key, entry.pk)
        newest[entry.key] = entry.pk
    report = pocketbase_outbox.drain(pocketbase, now=max(e.next_attempt_at for e in pending))

    # Each record once, with its newest change, in the order of their first changes.
    assert report.delivered == [newest[key] for key in sorted(first, key=first.get)]
    assert report.superseded == CHANGES - len(newest)
    assert not PocketBaseOutboxEntry.objects.pending().exists()
    records = {(r["tenant"], r["stack_name"]): r for r in pocketbase.list_records()}
    live = {key: status for key, status in expected.items() if status != StackStatus.DELETED}
    assert {key: r["status"] for key, r in records.items()} == live
    assert records[("customer-4", "customer-4-main")]["django_id"] == reborn.pk
    for stack in [*stacks[:3], reborn]:
        stack.refresh_from_db()
        assert stack.pocketbase_id == records[(stack.tenant.slug, stack.stack_name)]["id"]
        assert stack.status == expected[(stack.tenant.slug, stack.stack_name)]
    assert SECRET not in str(list(PocketBaseOutboxEntry.objects.values("record")))
    assert record_drift(remote, pocketbase) == []  # in sync


def test_a_refused_record_fails_the_step_with_pocketbases_reason(
    make_stack, remote, coolify_sim, pocketbase, operator, monkeypatch
):
    """A 4xx is not an outage: the operation fails, naming what PocketBase refused."""
    stack = new_stack(make_stack, 1)
    real = pocketbase_outbox.pocketbase_record
    # A status the collection's select field does not list: PocketBase answers 400.
    monkeypatch.setattr(
        pocketbase_outbox, "pocketbase_record", lambda s, status: {**real(s, status), "status": "x"}
    )
    operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)

    assert run_operation(
        operation.pk, remote=remote, sleep=no_sleep, poll_interval=0.02, health_timeout=5.0
    )

    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert operation.error.startswith("Step 'sync_pocketbase' failed: PocketBase refused")
    assert "status" in operation.error and "HTTP 400" in operation.error
    assert "Next: Fix what PocketBase names" in operation.error
    stack.refresh_from_db()
    assert stack.status == StackStatus.ERROR
    assert PocketBaseOutboxEntry.objects.filter(state=OutboxState.REJECTED).exists()
    assert not PocketBaseOutboxEntry.objects.pending().exists()  # nothing retried forever
    assert pocketbase.list_records() == []


def test_a_real_worker_delivers_a_record_queued_while_pocketbase_was_down(
    make_stack, coolify_sim, pocketbase_server, operator, tmp_path
):
    """Through the job path: the worker deploys with PocketBase down, PocketBase starts, a
    drain job queued with cfadmin.jobs.enqueue delivers the record."""
    port = free_port()
    worker = Worker(
        worker_env(
            coolify_sim.url,
            f"http://127.0.0.1:{port}",
            POCKETBASE_TIMEOUT="1",
            POCKETBASE_OUTBOX_RETRY_BASE="0.2",
            POCKETBASE_OUTBOX_RETRY_MAX="0.5",
            PROVISION_RECOVERY_INTERVAL="0",  # no maintenance loop: only the job delivers
        ),
        tmp_path / "qcluster.log",
    )
    stack = new_stack(make_stack, 1)
    worker.start()
    later = None
    try:
        operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
        operation = wait_finished(operation, worker)
        assert operation.status == OperationStatus.SUCCEEDED, operation.error
        stack.refresh_from_db()
        assert stack.status == StackStatus.RUNNING
        assert operation.steps.get(name="sync_pocketbase").outcome == StepOutcome.DEFERRED
        [entry] = PocketBaseOutboxEntry.objects.pending()
        assert entry.action == OutboxAction.UPSERT

        later = start_pocketbase(
            tmp_path / "pocketbase", email=PB_EMAIL, password=PB_PASSWORD, port=port
        )
        time.sleep(0.5)  # the entry's back-off (0.2 s) has passed
        pocketbase_outbox.request_drain()  # outside a transaction: queued at once

        deadline = time.monotonic() + 30
        while PocketBaseOutboxEntry.objects.pending().exists():
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.2)
        entry.refresh_from_db()
        assert entry.state == OutboxState.DELIVERED, (entry.last_error, worker.log_tail())
        with PocketBaseClient(later.url, email=PB_EMAIL, password=PB_PASSWORD) as client:
            record = client.find_record("customer-1", "customer-1-main")
        assert record is not None and record["status"] == "running"
        stack.refresh_from_db()
        assert stack.pocketbase_id == record["id"]
    finally:
        worker.stop()
        if later is not None:
            later.stop()


def test_a_collection_created_by_another_writer_meanwhile_is_no_refusal(tmp_path, monkeypatch):
    """Two writers meet a fresh PocketBase: both look (404), the other creates the collection
    first, ours is answered 400 "name exists". That is the collection being there, not a refusal
    (which the outbox would keep as rejected, and the record would never be written)."""
    server = start_pocketbase(tmp_path / "pocketbase", email=PB_EMAIL, password=PB_PASSWORD)
    ours = PocketBaseClient(server.url, email=PB_EMAIL, password=PB_PASSWORD, sleep=no_sleep)
    other = PocketBaseClient(server.url, email=PB_EMAIL, password=PB_PASSWORD, sleep=no_sleep)
    real_request = ours.request

    def request(method, path, **kwargs):
        if (method, path) == ("POST", "/api/collections"):
            other.ensure_collection()  # between our look and our create
        return real_request(method, path, **kwargs)

    monkeypatch.setattr(ours, "request", request)
    try:
        assert ours.ensure_collection() is False  # nothing changed by us
        saved = ours.upsert_record({"tenant": "customer-1", "stack_name": "customer-1-main"})
        assert other.find_record("customer-1", "customer-1-main")["id"] == saved["id"]
    finally:
        ours.close()
        other.close()
        server.stop()


def wait_finished(operation: Operation, worker: Worker, timeout: float = 60.0) -> Operation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operation.refresh_from_db()
        if not operation.is_in_flight:
            return operation
        time.sleep(0.2)
    raise AssertionError(f"operation still {operation.status}:\n{worker.log_tail()}")
