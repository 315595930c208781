"""The PocketBase outbox alone, against the in-memory PocketBase (tests/fakes.py): back-off,
order, coalescing, leases, refusals. The real PocketBase and the runner are in
tests/integration/test_pocketbase_outbox.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from stacks.choices import OperationKind, OutboxAction, OutboxState, StackStatus
from stacks.clients.errors import BadRequest, ServerError
from stacks.models import PocketBaseOutboxEntry as Entry
from stacks.remote import outbox
from tests.fakes import FakePocketBase

pytestmark = pytest.mark.django_db


@pytest.fixture
def pocketbase() -> FakePocketBase:
    return FakePocketBase()


@pytest.fixture
def stacks(make_stack):
    return [
        make_stack("customer-1", "customer-1-main", status=StackStatus.RUNNING),
        make_stack("customer-2", "customer-2-main", status=StackStatus.RUNNING),
        make_stack("customer-3", "customer-3-main", status=StackStatus.RUNNING),
    ]


def written(pocketbase: FakePocketBase) -> list[tuple[str, ...]]:
    """The writes PocketBase received, in order: (call, tenant or record id, ...)."""
    return [(name, *args) for name, args in pocketbase.calls if name != "find_record"]


def record_of(pocketbase: FakePocketBase, stack) -> dict | None:
    return next(
        (
            r
            for r in pocketbase.records.values()
            if (r["tenant"], r["stack_name"]) == (stack.tenant.slug, stack.stack_name)
        ),
        None,
    )


# --- back-off ---------------------------------------------------------------------------------


def test_the_retry_delay_doubles_up_to_the_cap():
    delays = [outbox.retry_delay(n, base=5, cap=300) for n in range(1, 9)]
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]


def test_the_retry_delay_follows_the_settings(settings):
    settings.POCKETBASE_OUTBOX_RETRY_BASE = 2
    settings.POCKETBASE_OUTBOX_RETRY_MAX = 7
    assert [outbox.retry_delay(n) for n in (1, 2, 3, 4)] == [2, 4, 7, 7]


def test_a_failed_delivery_waits_its_back_off_and_counts_its_attempts(stacks, pocketbase):
    [stack, *_] = stacks
    entry = outbox.queue_upsert(stack, StackStatus.RUNNING)
    pocketbase.down = True

    for attempt in (1, 2, 3):
        delivery = outbox.deliver_record(*entry.key, pocketbase)
        assert delivery.outcome == outbox.Outcome.DEFERRED
        entry.refresh_from_db()
        assert entry.state == OutboxState.PENDING
        assert entry.attempts == attempt
        assert "connection refused" in entry.last_error
        waited = (entry.next_attempt_at - entry.last_attempt_at).total_seconds()
        assert waited == pytest.approx(outbox.retry_delay(attempt))
        assert entry.lease_token == "" and entry.leased_until is None  # the lease is given back


def test_a_drain_leaves_records_that_are_not_due_yet(stacks, pocketbase):
    [stack, *_] = stacks
    entry = outbox.queue_upsert(stack, StackStatus.RUNNING)
    pocketbase.down = True
    outbox.deliver_record(*entry.key, pocketbase)
    entry.refresh_from_db()
    pocketbase.down = False
    pocketbase.calls.clear()

    early = outbox.drain(pocketbase, now=entry.next_attempt_at - timedelta(seconds=1))

    assert early.delivered == [] and pocketbase.calls == []
    due = outbox.drain(pocketbase, now=entry.next_attempt_at)
    assert due.delivered == [entry.pk]
    assert record_of(pocketbase, stack)["status"] == StackStatus.RUNNING


def test_a_new_change_is_tried_at_once_even_while_older_ones_back_off(stacks, pocketbase):
    [stack, *_] = stacks
    old = outbox.queue_upsert(stack, StackStatus.RUNNING)
    pocketbase.down = True
    outbox.deliver_record(*old.key, pocketbase)
    pocketbase.down = False

    new = outbox.queue_upsert(stack, StackStatus.STOPPED)  # due now
    report = outbox.drain(pocketbase)

    assert report.delivered == [new.pk] and report.superseded == 1
    assert record_of(pocketbase, stack)["status"] == StackStatus.STOPPED


# --- order --------------------------------------------------------------------------------------


def test_a_drain_writes_each_record_once_its_newest_state_in_the_order_of_the_changes(
    stacks, pocketbase
):
    one, two, three = stacks
    changes = [
        (two, StackStatus.RUNNING),
        (one, StackStatus.RUNNING),
        (two, StackStatus.STOPPED),
        (three, StackStatus.ERROR),
        (one, StackStatus.STOPPED),
        (two, StackStatus.RUNNING),
        (one, StackStatus.ERROR),
    ]
    entries = [outbox.queue_upsert(stack, status) for stack, status in changes]

    report = outbox.drain(pocketbase)

    # Records in the order of their first pending change; each with its newest state, once.
    assert written(pocketbase) == [
        ("upsert_record", "customer-2", "customer-2-main"),
        ("upsert_record", "customer-1", "customer-1-main"),
        ("upsert_record", "customer-3", "customer-3-main"),
    ]
    assert report.delivered == [entries[5].pk, entries[6].pk, entries[3].pk]
    assert report.superseded == 4
    assert [record_of(pocketbase, s)["status"] for s in stacks] == ["error", "running", "error"]
    states = dict(Entry.objects.values_list("pk", "state"))
    assert [states[e.pk] for e in entries] == [
        OutboxState.SUPERSEDED,
        OutboxState.SUPERSEDED,
        OutboxState.SUPERSEDED,
        OutboxState.DELIVERED,
        OutboxState.SUPERSEDED,
        OutboxState.DELIVERED,
        OutboxState.DELIVERED,
    ]
    for stack in stacks:
        stack.refresh_from_db()
        assert stack.pocketbase_id == record_of(pocketbase, stack)["id"]


def test_a_delete_then_a_new_stack_of_the_same_name_leaves_the_new_record(make_stack, pocketbase):
    first = make_stack("customer-1", "customer-1-main", status=StackStatus.RUNNING)
    outbox.queue_upsert(first, StackStatus.RUNNING)
    outbox.drain(pocketbase)
    first.refresh_from_db()
    pocketbase.down = True
    first.transition_to(StackStatus.DELETING)
    first.transition_to(StackStatus.DELETED)
    outbox.queue_delete(first)
    second = make_stack("customer-1", "customer-1-main", status=StackStatus.RUNNING)
    outbox.queue_upsert(second, StackStatus.RUNNING)
    pocketbase.down = False

    outbox.drain(pocketbase)

    record = record_of(pocketbase, second)
    assert record is not None, "the delete was written after the new stack's record"
    assert record["django_id"] == second.pk
    assert len(pocketbase.records) == 1


def test_a_delete_reaches_pocketbase_when_the_stack_row_is_gone(make_stack, pocketbase):
    stack = make_stack("customer-1", "customer-1-main", status=StackStatus.RUNNING)
    outbox.queue_upsert(stack, StackStatus.RUNNING)
    outbox.drain(pocketbase)
    stack.refresh_from_db()
    entry = outbox.queue_delete(stack)
    Entry.objects.filter(pk=entry.pk).update(stack=None)  # as if the row had gone

    report = outbox.drain(pocketbase)

    assert report.delivered == [entry.pk]
    assert pocketbase.records == {}


def test_an_older_entry_held_by_another_worker_keeps_a_second_drain_off_the_record(
    stacks, pocketbase
):
    [stack, other, _] = stacks
    held = outbox.queue_upsert(stack, StackStatus.RUNNING)
    Entry.objects.filter(pk=held.pk).update(
        lease_token="another-worker", leased_until=timezone.now() + timedelta(minutes=1)
    )
    newer = outbox.queue_upsert(stack, StackStatus.STOPPED)
    free = outbox.queue_upsert(other, StackStatus.RUNNING)

    report = outbox.drain(pocketbase)

    assert report.busy == 1 and report.delivered == [free.pk]
    assert record_of(pocketbase, stack) is None  # its newest state waits for the older one
    newer.refresh_from_db()
    assert (newer.state, newer.lease_token) == (OutboxState.PENDING, "")

    Entry.objects.filter(pk=held.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    assert outbox.drain(pocketbase).delivered == [newer.pk]  # an expired lease is taken over
    assert record_of(pocketbase, stack)["status"] == StackStatus.STOPPED


def test_when_pocketbase_cannot_be_reached_the_other_records_wait_without_being_tried(
    stacks, pocketbase
):
    entries = [outbox.queue_upsert(stack, StackStatus.RUNNING) for stack in stacks]
    pocketbase.down = True

    report = outbox.drain(pocketbase)

    assert [name for name, _ in pocketbase.calls] == ["upsert_record"]  # one try, not three
    assert len(report.deferred) == 3
    for entry in entries:
        entry.refresh_from_db()
        assert (entry.state, entry.attempts) == (OutboxState.PENDING, 1)
        assert entry.next_attempt_at > timezone.now()


def test_a_server_error_on_one_record_does_not_hold_up_the_others(stacks, pocketbase):
    one, two, _ = stacks
    first = outbox.queue_upsert(one, StackStatus.RUNNING)
    second = outbox.queue_upsert(two, StackStatus.RUNNING)
    pocketbase.fail("upsert_record", ServerError("boom", service="PocketBase", status=500))

    report = outbox.drain(pocketbase)

    assert report.deferred == [first.key] and report.delivered == [second.pk]


# --- refusals -----------------------------------------------------------------------------------


def test_a_record_pocketbase_refuses_is_rejected_not_retried(stacks, pocketbase):
    [stack, *_] = stacks
    older = outbox.queue_upsert(stack, StackStatus.RUNNING)
    refused = outbox.queue_upsert(stack, StackStatus.STOPPED)
    pocketbase.fail(
        "upsert_record",
        BadRequest(
            "Failed to create record.",
            service="PocketBase",
            status=400,
            field_errors={"status": ["Invalid value stopped."]},
        ),
    )

    delivery = outbox.deliver_record(*refused.key, pocketbase)

    assert delivery.outcome == outbox.Outcome.REJECTED
    refused.refresh_from_db()
    older.refresh_from_db()
    assert refused.state == OutboxState.REJECTED
    assert "Invalid value stopped" in refused.last_error
    assert older.state == OutboxState.SUPERSEDED
    assert outbox.drain(pocketbase).delivered == []  # nothing left to try
    assert outbox.sync_state(stack).rejected == refused.last_error

    newest = outbox.queue_upsert(stack, StackStatus.RUNNING)
    assert outbox.drain(pocketbase).delivered == [newest.pk]
    refused.refresh_from_db()
    assert refused.state == OutboxState.SUPERSEDED  # history once a newer state is in
    assert outbox.sync_state(stack).in_sync


# --- what is queued -----------------------------------------------------------------------------


def test_an_error_record_is_not_queued_for_a_tombstone(make_stack):
    stack = make_stack(status=StackStatus.DELETED)
    assert outbox.queue_error(stack, kind=OperationKind.DEPLOY) is None


def test_a_failed_delete_queues_an_error_record_only_when_there_is_a_record(make_stack):
    stack = make_stack(status=StackStatus.ERROR)
    assert outbox.queue_error(stack, kind=OperationKind.DELETE) is None  # never make one

    outbox.queue_upsert(stack, StackStatus.RUNNING)  # on its way to PocketBase
    entry = outbox.queue_error(stack, kind=OperationKind.DELETE)
    assert entry is not None and entry.record["status"] == StackStatus.ERROR

    recorded = make_stack("customer-9", "customer-9-main", pocketbase_id="rec123456789012")
    assert outbox.queue_error(recorded, kind=OperationKind.DELETE) is not None


def test_an_entry_carries_the_record_key_and_no_secret(make_stack):
    secret = "sk-outbox-unit-test-0123456789abcdef"
    stack = make_stack(
        domains={"webui": "agent.example.com"}, secrets={"ANTHROPIC_API_KEY": secret}
    )
    entry = outbox.queue_upsert(stack, StackStatus.RUNNING)
    assert (entry.tenant_slug, entry.stack_name, entry.action) == (
        "customer-123",
        "customer-123-main",
        OutboxAction.UPSERT,
    )
    assert entry.record["domains"] == ["agent.example.com"]
    assert secret not in str(entry.record)


def test_the_sync_state_says_since_when_how_often_and_why(stacks, pocketbase):
    [stack, *_] = stacks
    first = outbox.queue_upsert(stack, StackStatus.RUNNING)
    pocketbase.down = True
    outbox.deliver_record(*first.key, pocketbase)
    outbox.deliver_record(*first.key, pocketbase)

    state = outbox.sync_state(stack)

    assert (state.pending, state.attempts, state.since) == (1, 2, first.created_at)
    assert "connection refused" in state.last_error
    assert not state.in_sync
    assert outbox.stack_counts()["pending"] == 1


def test_delivered_entries_are_pruned_after_a_month(stacks, pocketbase):
    [stack, *_] = stacks
    entry = outbox.queue_upsert(stack, StackStatus.RUNNING)
    outbox.drain(pocketbase)
    Entry.objects.filter(pk=entry.pk).update(created_at=timezone.now() - timedelta(days=31))

    outbox.drain(pocketbase)

    assert not Entry.objects.filter(pk=entry.pk).exists()
