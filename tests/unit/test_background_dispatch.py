"""Background operations wait their turn (stacks/services/dispatch.py): created queued, handed to
the workers oldest first at most BACKGROUND_OPERATIONS_IN_FLIGHT at a time, never twice, never
past the cap when several dispatchers race; recovery leaves the waiting ones alone."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation
from stacks.provisioning import recovery
from stacks.remote import budget
from stacks.services import cancel_operation, request_operation, request_operations
from stacks.services import operations as operations_service
from stacks.services.dispatch import dispatch_background

RUN_TASK = "stacks.tasks.run_operation_task"


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """Operation ids handed to the broker (cfadmin.jobs.enqueue runs them after commit)."""
    handed: list[int] = []

    def fake_async_task(func, *args, **options):
        if func == RUN_TASK:
            handed.append(args[0])

    monkeypatch.setattr("django_q.tasks.async_task", fake_async_task)
    return handed


@pytest.fixture
def cap(settings) -> int:
    settings.BACKGROUND_OPERATIONS_IN_FLIGHT = 3
    return 3


@pytest.fixture
def running_stacks(make_stack):
    def make(count: int, prefix: str = "bg"):
        return [
            make_stack(stack_name=f"{prefix}-{i:02d}", status=StackStatus.RUNNING)
            for i in range(count)
        ]

    return make


def finish(operation_id: int, status: str = OperationStatus.SUCCEEDED) -> None:
    Operation.objects.filter(pk=operation_id).update(status=status, finished_at=timezone.now())


@pytest.mark.django_db
def test_an_interactive_operation_is_handed_over_at_once_a_background_one_waits(
    running_stacks, sent, cap, django_capture_on_commit_callbacks
):
    person, batch = running_stacks(2)
    with django_capture_on_commit_callbacks(execute=True):
        restart = request_operation(person, OperationKind.RESTART, actor="support")
    assert sent == [restart.pk] and restart.dispatched_at is not None and not restart.background

    with django_capture_on_commit_callbacks(execute=False):  # the dispatch after it not run
        held = request_operation(batch, OperationKind.REDEPLOY, actor="rollout", background=True)
    assert dispatch_background(cap=0) == 0  # no place free: it stays held
    held.refresh_from_db()
    assert held.background and held.status == OperationStatus.QUEUED
    assert held.dispatched_at is None and sent == [restart.pk]


@pytest.mark.django_db
def test_dispatch_hands_over_the_oldest_up_to_the_cap_then_one_per_finished(
    running_stacks, sent, cap, django_capture_on_commit_callbacks
):
    stacks = running_stacks(8)
    with django_capture_on_commit_callbacks(execute=True):
        queued, skipped = request_operations(
            stacks, OperationKind.REDEPLOY, actor="rollout", background=True
        )
    ids = [op.pk for op in queued]
    assert skipped == [] and sent == ids[:cap]  # after the commit: the oldest three

    assert dispatch_background() == 0  # full: nothing more
    finish(ids[1])
    finish(ids[0], OperationStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_background() == 2
    assert sent == ids[:5]
    assert Operation.objects.background_in_flight().count() == cap
    assert budget.current()["background_waiting"] == 3
    assert budget.current()["background_in_flight"] == cap


@pytest.mark.django_db
def test_cancelling_a_dispatched_background_operation_frees_its_place(
    running_stacks, sent, cap, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        queued, _ = request_operations(
            running_stacks(4), OperationKind.RESTART, actor="bulk", background=True
        )
    with django_capture_on_commit_callbacks(execute=True):
        cancel_operation(queued[0], actor="operator", reason="wrong stack")

    assert sent == [op.pk for op in queued]


@pytest.mark.django_db
def test_nothing_waiting_costs_one_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert dispatch_background() == 0


@pytest.mark.django_db
def test_recovery_leaves_held_operations_and_requeues_dispatched_ones_that_were_lost(
    running_stacks, sent, cap, settings, django_capture_on_commit_callbacks
):
    settings.PROVISION_QUEUED_STALE_AFTER = 120
    stacks = running_stacks(5)
    with django_capture_on_commit_callbacks(execute=True):
        queued, _ = request_operations(
            stacks, OperationKind.REDEPLOY, actor="rollout", background=True
        )
    long_ago = timezone.now() - timedelta(hours=2)
    Operation.objects.filter(pk__in=[op.pk for op in queued]).update(
        requested_at=long_ago, enqueued_at=long_ago
    )  # every one of them waited hours: the held ones for their turn, the others' tasks lost
    enqueued: list[int] = []

    report = recovery.recover_stale_operations(enqueue=enqueued.append)

    dispatched = [op.pk for op in queued[:cap]]
    assert sorted(report["requeued"]) == sorted(dispatched) == sorted(enqueued)
    assert report["failed"] == []
    held = Operation.objects.filter(pk__in=[op.pk for op in queued[cap:]])
    assert all(op.dispatched_at is None and op.enqueue_count == 1 for op in held)


@pytest.mark.django_db(transaction=True)
def test_racing_dispatchers_never_exceed_the_cap_nor_hand_one_over_twice(running_stacks, sent, cap):
    queued, _ = request_operations(
        running_stacks(12), OperationKind.REDEPLOY, actor="rollout", background=True
    )
    sent.clear()
    # Back to waiting, so the dispatchers below race for them from the start.
    Operation.objects.filter(pk__in=[op.pk for op in queued]).update(
        dispatched_at=None, dispatch_slot=None
    )
    rounds = 6 if connection.vendor == "postgresql" else 3
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            for _ in range(rounds):
                barrier.wait(10)
                dispatch_background()
                barrier.wait(10)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    def finisher() -> None:  # between rounds, one in flight ends
        for _ in range(rounds):
            barrier.wait(10)
            barrier.wait(10)
            first = Operation.objects.background_in_flight().order_by("dispatched_at").first()
            assert Operation.objects.background_in_flight().count() <= cap
            if first is not None:
                finish(first.pk)

    threads = [threading.Thread(target=dispatcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    finisher()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert len(sent) == len(set(sent))  # none handed over twice
    assert len(sent) == cap + rounds - 1  # the cap, then one per finished operation
    assert Operation.objects.background_in_flight().count() == cap - 1  # the last one finished
    oldest_first = [op.pk for op in sorted(queued, key=lambda op: (op.requested_at, op.pk))]
    assert sorted(sent) == sorted(oldest_first[: len(sent)])


@pytest.mark.django_db
def test_request_operation_refuses_a_stack_with_one_in_flight_background_or_not(
    running_stacks, sent, django_capture_on_commit_callbacks
):
    (stack,) = running_stacks(1)
    with django_capture_on_commit_callbacks(execute=True):
        request_operation(stack, OperationKind.REDEPLOY, actor="rollout", background=True)
    with pytest.raises(operations_service.OperationRefused) as refused:
        request_operation(stack, OperationKind.RESTART, actor="support")
    assert refused.value.code == "operation_in_flight"
