"""One Coolify call budget for everything (issue 17), end to end: worker threads run operations
through the real runner and clients against the simulator enforcing a per-minute limit, while
reconcile, health checks, the dispatcher's schedule and recovery run beside them.

The simulator and the pacer share a clock running SPEED times real time (Coolify's one-minute
window lasts 60 / SPEED real seconds), so several windows of a rollout fit in a few seconds;
the pacer sleeps on that clock too. Each thread is a worker process's worth of callers with
its own clients; they share one pacer as a process's threads do.

The limit is LIMIT (40) calls a minute, not Coolify's default 200: the same rules (pacing.py
scales every reserve with the limit), but the batch needs several windows' worth of calls, so
the budget binds — the test fails if the pacer never holds a call back or a window never fills.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from django.db import connections

from ops.health import run_checks
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.clients import pacing
from stacks.clients.coolify import CoolifyClient
from stacks.clients.pacing import RatePacer
from stacks.clients.pocketbase import PocketBaseClient
from stacks.coolify_simulator.api import Timings
from stacks.models import Operation, Stack
from stacks.provisioning import recovery, run_operation
from stacks.reconcile import run_reconcile
from stacks.remote import Remote, budget
from stacks.services import request_operation, request_operations
from stacks.services.dispatch import dispatch_background
from tests.conftest import PB_EMAIL, PB_PASSWORD, SIM_TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SPEED = 20.0  # simulated seconds per real second
# Coolify's default is 200; a smaller API_RATE_LIMIT makes the batch outgrow a window several
# times over (at 200 and SPEED 20 it never reached the limit: nothing was proven).
LIMIT = 40
CAP = 4  # background operations in flight
WORKERS = 6  # more than the cap: a person's operation finds a free worker
BATCH = 30
RESTARTS = 4
POLL_SECONDS = 10.0
# Coolify's own pace, in simulated seconds. A restart (StopService, then `docker compose up
# --force-recreate`) reads `starting:unhealthy` for the whole compose run and `exited` after it
# until the next container-status check: the compose run, tens of seconds for a real stack,
# lasts three polls here, so every poll sees the service go down (wait_healthy needs that)
# whatever the container-status check's phase; the check every 15 s (Coolify's is about a
# minute) keeps the test short.
TIMINGS = Timings(
    start_seconds=3 * POLL_SECONDS,
    stop_seconds=2.0,
    delete_seconds=1.0,
    queue_seconds=1.0,
    refresh_seconds=15.0,
    health_seconds=1.0,
    save_seconds=0.2,
)
SETUP_TIMINGS = replace(TIMINGS, start_seconds=2.0)  # the fleet's first deploys: no restart
RUN_TASK = "stacks.tasks.run_operation_task"
SECRETS = {"ANTHROPIC_API_KEY": "sk-test-budget-0123456789abcdef"}


FLEET_STATE: dict = {}


class FastClock:
    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.start = time.monotonic()

    def now(self) -> float:
        return 10_000.0 + (time.monotonic() - self.start) * self.speed

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speed)


class Fleet:
    """The broker (a queue fed by cfadmin.jobs.enqueue), worker threads, background noise."""

    def __init__(self, sim_url: str, pocketbase_url: str) -> None:
        self.sim_url = sim_url
        self.pocketbase_url = pocketbase_url
        self.broker: queue.Queue[int] = queue.Queue()
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []
        self.recovery_enqueued: list[tuple[int, bool]] = []  # (operation, was it dispatched)

    def async_task(self, func: str, *args, **options) -> None:
        if func == RUN_TASK:
            self.broker.put(args[0])

    def spawn(self, target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except BaseException as error:  # reported by the test
                self.errors.append(error)
            finally:
                connections.close_all()

        thread = threading.Thread(target=guarded, daemon=True)
        thread.start()
        self.threads.append(thread)

    def worker(self) -> None:
        remote = Remote(
            coolify=CoolifyClient(self.sim_url, SIM_TOKEN, timeout=5),
            pocketbase=PocketBaseClient(
                self.pocketbase_url, email=PB_EMAIL, password=PB_PASSWORD, timeout=5
            ),
        )
        with remote.coolify, remote.pocketbase:
            while not self.stop.is_set():
                try:
                    operation_id = self.broker.get(timeout=0.05)
                except queue.Empty:
                    continue
                run_operation(operation_id, remote=remote)

    def every(self, seconds: float, work: Callable[[], object]) -> Callable[[], None]:
        def loop() -> None:
            while not self.stop.wait(seconds):
                work()

        return loop

    def recover(self) -> None:
        def enqueue(operation_id: int) -> None:
            dispatched = Operation.objects.get(pk=operation_id).dispatched_at is not None
            self.recovery_enqueued.append((operation_id, dispatched))
            self.broker.put(operation_id)

        # Anything queued over 0.2 s counts as lost: the held ones are the test.
        recovery.recover_stale_operations(
            enqueue=enqueue, stale_after=3600, queued_stale_after=0.2, max_enqueues=1000
        )

    def shutdown(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def watch_windows(limiter) -> list[int]:
    """The simulator's limiter, recording the most calls any one window of the token counted:
    proof that the budget bound (the pacer's own view could be wrong)."""
    peaks = [0]
    attempt = limiter.attempt

    def counted(key: str, now: float, *, limit: int | None = None):
        answer = attempt(key, now, limit=limit)
        window = limiter.windows.get(key)
        if window is not None and limit is None:  # the token's window, not /api/health's
            peaks[0] = max(peaks[0], int(window["attempts"]))
        return answer

    limiter.attempt = counted
    return peaks


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}: "
            f"{list(Operation.objects.values_list('kind', 'status', 'current_step', 'error'))}"
            f" {FLEET_STATE['sim'].calls_by_route} {FLEET_STATE['pacer'].stats.line()}"
        )
        time.sleep(0.05)


def all_finished(ids: list[int]) -> Callable[[], bool]:
    def check() -> bool:
        return not Operation.objects.filter(pk__in=ids, finished_at__isnull=True).exists()

    return check


@pytest.fixture
def fleet(remote, coolify_sim, pocketbase_server, settings, monkeypatch):
    # Every 10 simulated seconds: 6 status reads a minute, a tenth of LIMIT as the default 3 s
    # is of Coolify's 200. Polled every 3 s, the reads alone would outgrow what background
    # calls leave to interactive ones at this small limit (a quarter, minus the processes'
    # reserve): they would wait for the next window, and a poll late by most of a minute can
    # miss a restart's whole stopped spell (wait_healthy then waits to its timeout).
    settings.PROVISION_POLL_INTERVAL = POLL_SECONDS / SPEED
    settings.PROVISION_HEALTH_TIMEOUT = 20.0  # 400 simulated seconds: a stuck wait fails
    settings.BACKGROUND_OPERATIONS_IN_FLIGHT = CAP
    settings.OPERATION_SUCCESS_HOOKS = []
    settings.OPERATION_START_HOOKS = []
    clock = FastClock(SPEED)
    coolify_sim.api.clock = clock
    coolify_sim.api.timings = SETUP_TIMINGS
    coolify_sim.api.rate_limit_per_minute = 0  # off while the fleet is deployed
    fleet_peaks = watch_windows(coolify_sim.api.limiter)
    pacer = pacing.install(
        coolify_sim.url, SIM_TOKEN, RatePacer(clock=clock.now, sleep=clock.sleep)
    )
    budget.watch(pacer)
    fleet = Fleet(coolify_sim.url, pocketbase_server.url)
    monkeypatch.setattr("django_q.tasks.async_task", fleet.async_task)
    for _ in range(WORKERS):
        fleet.spawn(fleet.worker)
    fleet.pacer = pacer
    fleet.peaks = fleet_peaks
    FLEET_STATE.update(sim=coolify_sim.api, pacer=pacer)
    yield fleet
    fleet.shutdown()
    pacing.reset()


def test_a_rollout_reconcile_and_health_checks_share_one_budget_people_first(
    fleet, coolify_sim, make_stack, settings
):
    stacks = [
        make_stack(
            f"customer-{i % 5:02d}",
            f"budget-{i:02d}",
            domains={"webui": f"b{i}.x.io"},
            secrets=SECRETS,
        )
        for i in range(BATCH + RESTARTS)
    ]
    deploys, _ = request_operations(stacks, OperationKind.DEPLOY, actor="setup")
    wait_for(all_finished([op.pk for op in deploys]), 60, "the fleet's deploys")
    assert {op.status for op in Operation.objects.all()} == {OperationStatus.SUCCEEDED}, {
        op.error for op in Operation.objects.all()
    }

    stacks = list(Stack.objects.filter(pk__in=[s.pk for s in stacks]).order_by("pk"))
    coolify_sim.api.rate_limit_per_minute = LIMIT  # from now on, Coolify's budget holds
    coolify_sim.api.timings = TIMINGS
    calls_before = coolify_sim.api.call_count
    fleet.spawn(fleet.every(0.3, lambda: run_reconcile(actor="schedule")))
    fleet.spawn(fleet.every(0.3, lambda: run_checks(["coolify_api", "active_stacks"])))
    fleet.spawn(fleet.every(0.5, dispatch_background))  # the one-minute schedule
    fleet.spawn(fleet.every(0.2, fleet.recover))

    batch, skipped = request_operations(
        stacks[:BATCH], OperationKind.REDEPLOY, actor="rollout", background=True
    )
    assert skipped == []
    batch_ids = [op.pk for op in batch]
    wait_for(
        lambda: (
            Operation.objects.filter(pk__in=batch_ids, status=OperationStatus.SUCCEEDED).count()
            >= CAP
        ),
        30,
        "the batch under way",
    )
    restarts, waiting = [], []
    for stack in stacks[BATCH:]:  # a support person's restarts, one by one
        waiting.append(Operation.objects.awaiting_dispatch().count())
        restarts.append(request_operation(stack, OperationKind.RESTART, actor="support"))
        time.sleep(0.2)
    assert min(waiting) > 0  # asked for mid-batch: background redeploys still queued
    wait_for(all_finished(batch_ids + [op.pk for op in restarts]), 55, "the batch")
    fleet.shutdown()

    assert fleet.errors == []
    ops = {
        op.pk: op for op in Operation.objects.filter(pk__in=batch_ids + [r.pk for r in restarts])
    }
    assert {op.status for op in ops.values()} == {OperationStatus.SUCCEEDED}, [
        op.error for op in ops.values() if op.error
    ]
    # Nothing answered 429, and the budget did bind: the batch took several windows' worth of
    # calls, a window of the simulator's own count filled up to the background reserve at
    # least, and the pacer held calls back.
    assert coolify_sim.api.rate_limited == 0
    assert fleet.pacer.stats.rate_limited == 0
    assert coolify_sim.api.call_count - calls_before > 3 * LIMIT
    _, background_reserve = pacing.reserves(LIMIT, settings.COOLIFY_BACKGROUND_RESERVE_SHARE)
    assert fleet.peaks[0] >= LIMIT - background_reserve
    assert fleet.pacer.stats.paced_waits > 0
    # A person's restarts went first: each one ended before the batch did.
    batch_end = max(ops[pk].finished_at for pk in batch_ids)
    assert all(ops[r.pk].finished_at < batch_end for r in restarts)
    # The batch went oldest first, never more than CAP at once.
    background = sorted((ops[pk] for pk in batch_ids), key=lambda op: op.dispatched_at)
    assert [op.pk for op in background] == sorted(batch_ids)
    for op in background:
        in_flight = [o for o in background if o.dispatched_at <= op.dispatched_at < o.finished_at]
        assert len(in_flight) <= CAP
    # Recovery queued again only operations that had been dispatched.
    assert all(dispatched for _, dispatched in fleet.recovery_enqueued)
    # The dashboard's figure is the server's count, seen by the clients.
    shown = budget.current()
    assert shown["limit"] == LIMIT and shown["background_in_flight"] == 0
    assert all(s.status == StackStatus.RUNNING for s in Stack.objects.all())
