"""Soak: deploys and deletes through a real worker cluster that is killed (SIGKILL, the whole
process group) three times while the simulated Coolify injects faults. Within a bounded time of
the last kill every operation has finished — succeeded, or failed with a reason — and every
stack is running, deleted, or in error with a reason; Coolify and PocketBase agree with it.

Nothing is cleaned up by the killed cluster: its running operations lose their heartbeat, the
tasks its pusher had taken stay locked in the broker for Q_TIMEOUT + 120 s, queued rows wait.
Only recovery (stacks/provisioning/recovery.py, run by each new worker at start and every half
second here) and the claim bring them to an end.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django_q.models import OrmQ

from cfadmin.schedules import install_schedules
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.coolify_simulator.server import Fault
from stacks.models import Operation, PocketBaseOutboxEntry, Stack
from stacks.services import request_operation
from tests.integration.workers import Worker, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DEPLOYS = 12
DELETES = 4
SETTLE_BOUND = 60.0  # seconds after the last kill by which nothing may be in flight
UUID = "[A-Za-z0-9]+"
# Transient faults, each firing a few times across the run (the simulator counts them).
FAULTS = [
    Fault(path=r"/api/v1/projects", method="POST", kind="error", status=500, times=1),
    Fault(path=r"/api/v1/services", method="POST", kind="reset", phase="after", times=2),
    Fault(path=rf"/api/v1/services/{UUID}/envs/bulk", method="PATCH", kind="error", times=1),
    Fault(path=rf"/api/v1/services/{UUID}/start", method="POST", kind="error", status=503, times=2),
    Fault(path=r"/api/v1/services", method="GET", kind="error", status=502, times=4),
    Fault(path=rf"/api/v1/services/{UUID}", method="DELETE", kind="reset", phase="after", times=1),
]
# Small thresholds, so recovery acts within seconds (production: minutes).
WORKER_SETTINGS = {
    "Q_WORKERS": "2",
    "Q_TIMEOUT": "30",  # a task its pusher took comes back only after 150 s: not in this test
    "PROVISION_STALE_AFTER": "6",  # longer than any step goes without a heartbeat here
    "PROVISION_MAX_ATTEMPTS": "6",
    "PROVISION_QUEUED_STALE_AFTER": "2",
    "PROVISION_QUEUED_MAX_ENQUEUES": "6",
    "PROVISION_RECOVERY_INTERVAL": "0.5",
    "PROVISION_HEALTH_TIMEOUT": "10",
    "PROVISION_DELETE_TIMEOUT": "10",
    "COOLIFY_TIMEOUT": "2",
    "POCKETBASE_TIMEOUT": "0.5",  # a worker killed while delivering a record holds it 23 s
    "POCKETBASE_OUTBOX_RETRY_BASE": "0.5",
    "POCKETBASE_OUTBOX_RETRY_MAX": "2",
    "OPERATION_SUCCESS_HOOKS": "",  # the validation checklists are not what is soaked here
}


def wait_until(condition: Callable[[], bool], timeout: float, worker: Worker, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s\n{worker.log_tail()}"
        time.sleep(0.1)


def running() -> bool:
    return Operation.objects.filter(status=OperationStatus.RUNNING).exists()


def deploys_finished() -> int:
    return (
        Operation.objects.filter(kind=OperationKind.DEPLOY)
        .exclude(status__in=[OperationStatus.QUEUED, OperationStatus.RUNNING])
        .count()
    )


def test_killing_the_worker_cluster_three_times_leaves_nothing_stuck(
    make_stack, coolify_sim, pocketbase_server, pocketbase, operator, admin_role, tmp_path
):
    install_schedules()  # the one-minute safety nets exist (a flush may have taken them)
    for fault in FAULTS:
        coolify_sim.add_fault(fault)
    stacks = [
        make_stack(
            f"customer-{n % 3 + 1}",
            f"soak-{n}",
            domains={"webui": f"soak{n}.example.com"},
            secrets={"ANTHROPIC_API_KEY": f"sk-test-soak-{n:02d}-0123456789abcdef"},
        )
        for n in range(DEPLOYS)
    ]
    worker = Worker(
        worker_env(coolify_sim.url, pocketbase_server.url, **WORKER_SETTINGS),
        tmp_path / "qcluster.log",
    )
    kills: list[float] = []
    orphaned: set[int] = set()  # running when their worker died

    def kill_and_restart() -> None:
        worker.kill()
        kills.append(time.monotonic())
        orphaned.update(
            Operation.objects.filter(status=OperationStatus.RUNNING).values_list("pk", flat=True)
        )
        time.sleep(0.3)
        worker.start()

    worker.start()
    try:
        for stack in stacks:
            request_operation(stack, OperationKind.DEPLOY, actor=operator)

        # 1: in the middle of the first deploys.
        wait_until(running, 30, worker, "a running deploy")
        kill_and_restart()

        # 2: once a few deploys ended, delete those stacks, and kill during the deletes.
        wait_until(lambda: deploys_finished() >= DELETES, 45, worker, f"{DELETES} deploys")
        done = (
            Operation.objects.filter(kind=OperationKind.DEPLOY)
            .exclude(status__in=[OperationStatus.QUEUED, OperationStatus.RUNNING])
            .order_by("finished_at")
            .values_list("stack_id", flat=True)[:DELETES]
        )
        for stack in Stack.objects.filter(pk__in=list(done)).select_related("tenant"):
            request_operation(stack, OperationKind.DELETE, actor=admin_role)
        wait_until(
            lambda: (
                Operation.objects.filter(
                    kind=OperationKind.DELETE, status=OperationStatus.RUNNING
                ).exists()
                or not Operation.objects.in_flight().filter(kind=OperationKind.DELETE).exists()
            ),
            30,
            worker,
            "a running delete",
        )
        kill_and_restart()

        # 3: a moment later, whatever is in flight then.
        time.sleep(1.5)
        kill_and_restart()

        wait_until(
            lambda: not Operation.objects.in_flight().exists(),
            SETTLE_BOUND,
            worker,
            "every operation finished after the last kill",
        )
        settled_after = time.monotonic() - kills[-1]
        wait_until(
            lambda: not PocketBaseOutboxEntry.objects.pending().exists(),
            40,
            worker,
            "the PocketBase outbox drained",
        )
    finally:
        worker.stop()

    assert len(kills) == 3 and settled_after < SETTLE_BOUND
    operations = list(Operation.objects.select_related("stack"))
    assert len(operations) == DEPLOYS + DELETES
    for operation in operations:
        assert operation.status in (OperationStatus.SUCCEEDED, OperationStatus.FAILED), operation
        assert operation.finished_at is not None, operation
        if operation.status == OperationStatus.FAILED:
            assert operation.error.strip(), f"{operation} failed without a reason"
    # Kills landed on running work, and recovery took each such operation up again.
    assert orphaned, "no kill hit a running operation"
    for operation in operations:
        if operation.pk in orphaned:
            assert operation.attempts >= 2 or "worker stopped" in operation.error, operation
    assert coolify_sim.fired, "no fault was injected"

    services = {}
    for service in coolify_sim.api.snapshot()["services"]:
        services.setdefault(service["name"], []).append(service)
    records = {r["stack_name"]: r for r in pocketbase.list_records()}
    deleted = 0
    for stack in Stack.objects.all():
        assert stack.status in (StackStatus.RUNNING, StackStatus.DELETED, StackStatus.ERROR), (
            stack,
            stack.status,
        )
        if stack.status == StackStatus.ERROR:
            assert stack.status_detail.strip(), f"{stack} in error without a reason"
        if stack.status == StackStatus.RUNNING:
            # One service, the one on record: a kill never made a second one.
            [service] = services.get(stack.stack_name, [])
            assert service["uuid"] == stack.coolify_service_uuid
            assert records[stack.stack_name]["status"] == "running"
            assert records[stack.stack_name]["service_uuid"] == stack.coolify_service_uuid
        if stack.status == StackStatus.DELETED:
            deleted += 1
            assert stack.stack_name not in records
            assert all(s["deleting"] for s in services.get(stack.stack_name, []))
        if stack.status == StackStatus.ERROR:
            assert len(services.get(stack.stack_name, [])) <= 1
    assert (
        deleted
        + Stack.objects.filter(status=StackStatus.ERROR, operations__kind=OperationKind.DELETE)
        .distinct()
        .count()
        == DELETES
    )


# --- a task that never reached the queue --------------------------------------------------------


def test_an_operation_whose_task_never_reached_the_queue_is_recovered_and_deploys(
    make_stack, coolify_sim, pocketbase_server, pocketbase, operator, tmp_path, monkeypatch
):
    """The enqueue after the commit failed (the broker was down): the operation is queued with
    no task. The worker's recovery queues it again, and it runs to success."""
    monkeypatch.setattr("stacks.services.operations.enqueue_operation", lambda operation_id: None)
    stack = make_stack(
        "customer-1",
        "customer-1-main",
        domains={"webui": "lost.example.com"},
        secrets={"ANTHROPIC_API_KEY": "sk-test-lost-task-0123456789abcdef"},
    )
    operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
    assert not OrmQ.objects.exists()  # no task anywhere
    worker = Worker(
        worker_env(
            coolify_sim.url,
            pocketbase_server.url,
            PROVISION_QUEUED_STALE_AFTER="1",
            PROVISION_RECOVERY_INTERVAL="0.5",
            OPERATION_SUCCESS_HOOKS="",
        ),
        tmp_path / "qcluster.log",
    )
    worker.start()
    try:
        wait_until(lambda: not Operation.objects.in_flight().exists(), 60, worker, "the deploy")
    finally:
        worker.stop()

    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert operation.enqueue_count >= 2  # queued again by recovery ...
    assert operation.attempts == 1  # ... and run once
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    assert pocketbase.find_record("customer-1", "customer-1-main")["status"] == "running"
