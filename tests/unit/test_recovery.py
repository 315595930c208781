"""No operation stays stuck: lost tasks are queued again and then failed with a reason, a
duplicate task does nothing, recovery runs on a schedule and in each worker, and an operator can
cancel a queued operation with a reason (stacks/provisioning/recovery.py, stacks/services, the
admin).

The runs of recovered operations against the simulator are in tests/integration/test_soak.py
and tests/integration/test_faults.py.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from cfadmin.models import AuditAction, AuditEvent
from cfadmin.schedules import install_schedules
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation, PocketBaseOutboxEntry
from stacks.provisioning import recovery, run_operation
from stacks.schedules import OUTBOX_SCHEDULE, RECOVERY_SCHEDULE
from stacks.services import OperationRefused, cancel_operation, request_operation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.PROVISION_QUEUED_STALE_AFTER = 120
    settings.PROVISION_QUEUED_MAX_ENQUEUES = 4
    settings.PROVISION_STALE_AFTER = 300
    settings.PROVISION_MAX_ATTEMPTS = 3


def queued_for(stack, age_seconds: float, *, count: int = 1, kind=OperationKind.RESTART):
    operation = Operation.objects.create(
        stack=stack, kind=kind, requested_by_repr="operator", enqueue_count=count
    )
    Operation.objects.filter(pk=operation.pk).update(
        enqueued_at=timezone.now() - timedelta(seconds=age_seconds)
    )
    operation.refresh_from_db()
    return operation


def recover() -> tuple[dict[str, list[int]], list[int]]:
    enqueued: list[int] = []
    return recovery.recover_stale_operations(enqueue=enqueued.append), enqueued


# --- queued operations whose task was lost -------------------------------------------------------


def test_a_queued_operation_no_worker_took_is_queued_again_after_the_threshold(make_stack):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = queued_for(stack, age_seconds=121)

    report, enqueued = recover()

    assert report == {"requeued": [operation.pk], "failed": []}
    assert enqueued == [operation.pk]
    operation.refresh_from_db()
    assert operation.status == OperationStatus.QUEUED
    assert operation.enqueue_count == 2
    assert timezone.now() - operation.enqueued_at < timedelta(seconds=5)


def test_a_queued_operation_younger_than_the_threshold_is_left_alone(make_stack):
    operation = queued_for(make_stack(status=StackStatus.RUNNING), age_seconds=100)

    assert recover() == ({"requeued": [], "failed": []}, [])
    operation.refresh_from_db()
    assert operation.enqueue_count == 1


def test_the_wait_doubles_each_time_it_was_queued(make_stack):
    """A long queue is not a lost task: each new task gets twice as long."""
    stack = make_stack(status=StackStatus.RUNNING)
    operation = queued_for(stack, age_seconds=200, count=2)  # its 2nd task may wait 240 s
    assert recover() == ({"requeued": [], "failed": []}, [])

    Operation.objects.filter(pk=operation.pk).update(
        enqueued_at=timezone.now() - timedelta(seconds=241)
    )
    assert recover()[1] == [operation.pk]
    assert [recovery.queued_wait(120, n) for n in (1, 2, 3, 4)] == [120, 240, 480, 960]


def test_an_operation_no_worker_ever_takes_is_failed_with_the_reason(make_stack):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = queued_for(stack, age_seconds=961, count=4)

    report, enqueued = recover()

    assert report == {"requeued": [], "failed": [operation.pk]} and enqueued == []
    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert operation.finished_at is not None
    assert "queued 4 times and no worker took it (the last time 16 minutes ago)" in (
        operation.error
    )
    assert "python manage.py qcluster" in operation.error
    assert operation.result["error"]["code"] == "not_taken"
    stack.refresh_from_db()
    assert stack.status == StackStatus.ERROR  # as a failed step leaves it
    assert "no worker took it" in stack.status_detail
    assert AuditEvent.objects.filter(
        action=AuditAction.OPERATION_RESULT, target_id=str(operation.pk)
    ).exists()
    # PocketBase is told too, through the outbox (no PocketBase configured here: it waits).
    [entry] = PocketBaseOutboxEntry.objects.pending()
    assert (entry.stack_id, entry.record["status"]) == (stack.pk, StackStatus.ERROR)


def test_a_failed_first_deploy_leaves_a_pending_stack_pending(make_stack):
    """pending → error is no transition of the status machine: the operation says why."""
    stack = make_stack()
    operation = queued_for(stack, age_seconds=961, count=4, kind=OperationKind.DEPLOY)

    recover()

    operation.refresh_from_db()
    stack.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert stack.status == StackStatus.PENDING


def test_a_second_recovery_right_after_moves_nothing(make_stack):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = queued_for(stack, age_seconds=121)

    first, _ = recover()
    second, enqueued = recover()

    assert first["requeued"] == [operation.pk]
    assert second == {"requeued": [], "failed": []} and enqueued == []


def test_an_operation_another_process_moved_meanwhile_is_left_to_it(make_stack, monkeypatch):
    """Each move is a conditional UPDATE on what was read: only one process wins it."""
    stack = make_stack(status=StackStatus.RUNNING)
    operation = queued_for(stack, age_seconds=121)
    real_filter = Operation.objects.filter

    def claimed_meanwhile(*args, **kwargs):
        result = real_filter(*args, **kwargs)
        if kwargs.get("status") == OperationStatus.QUEUED and "enqueued_at__lt" in kwargs:
            listed = list(result.select_related("stack__tenant"))
            Operation.objects.claim(operation.pk)  # a worker takes it between read and move
            return FakeListing(listed)
        return result

    monkeypatch.setattr(Operation.objects, "filter", claimed_meanwhile)
    report, enqueued = recover()

    assert report == {"requeued": [], "failed": []} and enqueued == []
    operation.refresh_from_db()
    assert operation.status == OperationStatus.RUNNING and operation.enqueue_count == 1


class FakeListing(list):
    def select_related(self, *fields):
        return self


def test_a_running_operation_without_heartbeat_is_queued_again_as_new(make_stack):
    stack = make_stack(status=StackStatus.DEPLOYING)
    operation = Operation.objects.create(
        stack=stack,
        kind=OperationKind.DEPLOY,
        status=OperationStatus.RUNNING,
        requested_by_repr="operator",
        attempts=1,
        enqueue_count=3,
        heartbeat_at=timezone.now() - timedelta(seconds=301),
    )
    Operation.objects.filter(pk=operation.pk).update(
        enqueued_at=timezone.now() - timedelta(hours=1)
    )

    report, enqueued = recover()

    assert report == {"requeued": [operation.pk], "failed": []} and enqueued == [operation.pk]
    operation.refresh_from_db()
    assert operation.status == OperationStatus.QUEUED
    assert operation.enqueue_count == 1  # a fresh wait for its new task
    assert timezone.now() - operation.enqueued_at < timedelta(seconds=5)


# --- duplicate tasks ---------------------------------------------------------------------------


class Untouchable:
    """A remote that fails the test if anything uses it."""

    def __getattr__(self, name):
        raise AssertionError(f"a duplicate task used the remote ({name})")


@pytest.mark.parametrize(
    "status",
    [
        OperationStatus.RUNNING,
        OperationStatus.SUCCEEDED,
        OperationStatus.FAILED,
        OperationStatus.CANCELLED,
    ],
)
def test_a_duplicate_task_for_a_taken_or_finished_operation_does_nothing(make_stack, status):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = Operation.objects.create(
        stack=stack,
        kind=OperationKind.RESTART,
        status=status,
        requested_by_repr="operator",
        attempts=1,
    )
    before = Operation.objects.filter(pk=operation.pk).values().get()

    assert run_operation(operation.pk, remote=Untouchable()) is False

    assert Operation.objects.filter(pk=operation.pk).values().get() == before
    assert not operation.steps.exists()
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING


# --- cancelling --------------------------------------------------------------------------------


def test_a_queued_operation_is_cancelled_with_its_reason_in_the_trail(make_stack, operator):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = request_operation(stack, OperationKind.RESTART, actor=operator)

    cancel_operation(operation, actor=operator, reason="  wrong stack,\n  meant the other one ")

    operation.refresh_from_db()
    assert operation.status == OperationStatus.CANCELLED
    assert operation.finished_at is not None
    assert operation.error == "Cancelled by operator: wrong stack, meant the other one"
    assert operation.result["error"] == {
        "code": "cancelled",
        "message": "wrong stack, meant the other one",
    }
    event = AuditEvent.objects.get(action=AuditAction.OPERATION_RESULT, actor=operator)
    assert event.message == "Restart cancelled: wrong stack, meant the other one"
    assert event.changes["reason"] == "wrong stack, meant the other one"
    assert event.changes["stack_status"] == [StackStatus.RUNNING, StackStatus.RUNNING]
    assert (event.tenant_slug, event.stack_name) == ("customer-123", "customer-123-main")
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING  # nothing was done to it
    assert not PocketBaseOutboxEntry.objects.exists()
    # ... and the stack takes a new operation at once.
    assert request_operation(stack, OperationKind.STOP, actor=operator).status == "queued"


def test_cancelling_after_an_attempt_that_began_leaves_the_stack_in_error(make_stack, operator):
    """A deploy whose worker died was queued again with the stack half-made (deploying)."""
    stack = make_stack(status=StackStatus.DEPLOYING, coolify_service_uuid="svc1")
    operation = queued_for(stack, age_seconds=0, kind=OperationKind.DEPLOY)

    cancel_operation(operation, actor=operator, reason="customer gave up")

    stack.refresh_from_db()
    assert stack.status == StackStatus.ERROR
    assert "cancelled (customer gave up)" in stack.status_detail
    assert "may be partial" in stack.status_detail
    [entry] = PocketBaseOutboxEntry.objects.pending()
    assert entry.record["status"] == StackStatus.ERROR


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (OperationStatus.RUNNING, "is running: only a queued operation can be cancelled"),
        (OperationStatus.SUCCEEDED, "is succeeded already"),
        (OperationStatus.FAILED, "is failed already"),
        (OperationStatus.CANCELLED, "is cancelled already"),
    ],
)
def test_only_a_queued_operation_can_be_cancelled(make_stack, operator, status, says):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = Operation.objects.create(
        stack=stack, kind=OperationKind.RESTART, status=status, requested_by_repr="x"
    )

    with pytest.raises(OperationRefused) as refused:
        cancel_operation(operation, actor=operator, reason="because")

    assert refused.value.code == "not_queued"
    assert says in refused.value.message
    operation.refresh_from_db()
    assert operation.status == status
    assert not AuditEvent.objects.filter(action=AuditAction.OPERATION_RESULT).exists()


def test_a_cancel_without_a_reason_is_refused(make_stack, operator):
    operation = queued_for(make_stack(status=StackStatus.RUNNING), age_seconds=0)

    with pytest.raises(OperationRefused) as refused:
        cancel_operation(operation, actor=operator, reason=" \n ")

    assert refused.value.code == "reason_required"
    operation.refresh_from_db()
    assert operation.status == OperationStatus.QUEUED


def test_a_worker_that_claimed_it_first_wins_over_a_cancel(make_stack, operator):
    operation = queued_for(make_stack(status=StackStatus.RUNNING), age_seconds=0)
    assert Operation.objects.claim(operation.pk)  # the worker, after the page was loaded

    with pytest.raises(OperationRefused, match="is running"):
        cancel_operation(operation, actor=operator, reason="too late")

    operation.refresh_from_db()
    assert operation.status == OperationStatus.RUNNING


# --- cancelling in the admin -------------------------------------------------------------------


def cancel_url(operation) -> str:
    return reverse("admin:stacks_stack_cancel_operation", args=[operation.stack_id, operation.pk])


def stack_page(client, stack) -> str:
    return client.get(reverse("admin:stacks_stack_change", args=[stack.pk])).content.decode()


def test_the_stack_page_offers_cancel_for_a_queued_operation_to_who_may_request_it(
    client, make_stack, operator, viewer
):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = queued_for(stack, age_seconds=130, count=2)

    client.force_login(operator)
    page = stack_page(client, stack)
    assert cancel_url(operation) in page
    assert "queued 2\xa0minutes ago, 2 times" in page

    client.force_login(viewer)
    assert cancel_url(operation) not in stack_page(client, stack)
    assert client.get(cancel_url(operation)).status_code == 403

    Operation.objects.filter(pk=operation.pk).update(status=OperationStatus.RUNNING)
    client.force_login(operator)
    assert cancel_url(operation) not in stack_page(client, stack)


def test_cancelling_in_the_admin_asks_for_a_reason_then_cancels(client, make_stack, operator):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = queued_for(stack, age_seconds=0)
    client.force_login(operator)

    page = client.get(cancel_url(operation))
    assert page.status_code == 200
    assert b"The stack stays <strong>running</strong>" in page.content
    assert b'name="reason"' in page.content

    blank = client.post(cancel_url(operation), {"reason": ""})
    assert blank.status_code == 200
    assert b"This field is required." in blank.content
    operation.refresh_from_db()
    assert operation.status == OperationStatus.QUEUED

    done = client.post(cancel_url(operation), {"reason": "duplicate request"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("admin:stacks_stack_change", args=[stack.pk])
    assert f"Restart #{operation.pk} cancelled; customer-123/customer-123-main is running." in [
        str(m) for m in done.context["messages"]
    ]
    operation.refresh_from_db()
    assert operation.status == OperationStatus.CANCELLED
    assert operation.error.endswith("duplicate request")


def test_the_admin_refuses_to_cancel_a_running_operation_saying_why(client, make_stack, operator):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = queued_for(stack, age_seconds=0)
    Operation.objects.claim(operation.pk)
    client.force_login(operator)

    response = client.post(cancel_url(operation), {"reason": "stuck?"}, follow=True)

    [message] = [str(m) for m in response.context["messages"]]
    assert "is running: only a queued operation can be cancelled" in message
    operation.refresh_from_db()
    assert operation.status == OperationStatus.RUNNING


def test_a_queued_delete_is_the_admin_roles_to_cancel(client, make_stack, operator, admin_role):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = queued_for(stack, age_seconds=0, kind=OperationKind.DELETE)

    client.force_login(operator)
    assert client.post(cancel_url(operation), {"reason": "no"}).status_code == 403
    operation.refresh_from_db()
    assert operation.status == OperationStatus.QUEUED

    client.force_login(admin_role)
    client.post(cancel_url(operation), {"reason": "customer renewed"})
    operation.refresh_from_db()
    assert operation.status == OperationStatus.CANCELLED


def test_an_operation_of_another_stack_is_not_found(client, make_stack, operator):
    stack = make_stack(status=StackStatus.RUNNING)
    other = make_stack("customer-9", "customer-9-main", status=StackStatus.RUNNING)
    operation = queued_for(other, age_seconds=0)
    client.force_login(operator)

    url = reverse("admin:stacks_stack_cancel_operation", args=[stack.pk, operation.pk])
    assert client.post(url, {"reason": "x"}).status_code == 404


# --- when recovery runs ------------------------------------------------------------------------


def test_recovery_and_the_outbox_are_scheduled_every_minute(settings):
    Schedule.objects.filter(name__in=[RECOVERY_SCHEDULE, OUTBOX_SCHEDULE]).delete()
    install_schedules()
    install_schedules()

    for name, func in (
        (RECOVERY_SCHEDULE, "stacks.tasks.recover_stale_operations_task"),
        (OUTBOX_SCHEDULE, "stacks.tasks.drain_pocketbase_outbox_task"),
    ):
        [schedule] = Schedule.objects.filter(name=name)
        assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
            func,
            Schedule.MINUTES,
            1,
        )
        assert schedule.repeats == -1


def test_the_worker_loop_is_off_when_its_interval_is_zero(settings):
    settings.PROVISION_RECOVERY_INTERVAL = 0
    assert recovery.start_worker_maintenance(sender="django_q", proc_name="Worker-1") is None


@pytest.mark.django_db(transaction=True)
def test_the_worker_loop_recovers_at_once_and_then_every_interval(make_stack, monkeypatch):
    """As in a qcluster worker (post_spawn): the first run comes at start, not a minute later."""
    stack = make_stack(status=StackStatus.RUNNING)
    operation = queued_for(stack, age_seconds=121)
    runs: list[float] = []
    real = recovery.run_maintenance

    def counted(**kwargs):
        runs.append(time.monotonic())
        return real(**kwargs)

    monkeypatch.setattr(recovery, "run_maintenance", counted)
    monkeypatch.setattr("stacks.services.operations.enqueue_operation", lambda pk: None)
    stop = threading.Event()
    loop = threading.Thread(target=recovery.maintenance_loop, args=(0.05, stop))
    started = time.monotonic()
    loop.start()
    try:
        deadline = time.monotonic() + 10
        while len(runs) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        loop.join(10)

    assert len(runs) >= 3
    assert runs[0] - started < 1.0
    operation.refresh_from_db()
    assert operation.enqueue_count == 2  # queued again once, not at every run


def test_the_outbox_pending_count_shows_on_the_dashboard_with_a_link(client, make_stack, viewer):
    stack = make_stack(status=StackStatus.RUNNING)
    PocketBaseOutboxEntry.objects.create(
        stack=stack, tenant_slug="customer-123", stack_name=stack.stack_name, action="upsert"
    )
    client.force_login(viewer)

    page = client.get(reverse("admin:ops_dashboard")).content.decode()

    assert "PocketBase sync pending (1)" in page
    url = reverse("admin:stacks_stack_changelist") + "?pocketbase_sync=pending"
    assert url in page
    listing = client.get(url).content.decode()
    assert stack.stack_name in listing
    other = make_stack("customer-9", "customer-9-main", status=StackStatus.RUNNING)
    assert other.stack_name not in client.get(url).content.decode()
    assert other.stack_name in client.get(reverse("admin:stacks_stack_changelist")).content.decode()
