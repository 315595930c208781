"""Rules the database itself enforces, and the stack status machine."""

from __future__ import annotations

import itertools

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from stacks.choices import STACK_TRANSITIONS, OperationKind, OperationStatus, StackStatus
from stacks.models import InvalidTransition, Operation, Stack, StackDomain


def new_operation(stack: Stack, status: str = OperationStatus.QUEUED, **fields) -> Operation:
    fields.setdefault("kind", OperationKind.DEPLOY)
    return Operation.objects.create(
        stack=stack, status=status, requested_by_repr="operator", **fields
    )


# --------------------------------------------------------------------------------------------
# one operation in flight per stack

IN_FLIGHT = [OperationStatus.QUEUED, OperationStatus.RUNNING]
FINISHED = [OperationStatus.SUCCEEDED, OperationStatus.FAILED]


@pytest.mark.parametrize(("first", "second"), list(itertools.product(IN_FLIGHT, IN_FLIGHT)))
def test_a_second_in_flight_operation_for_a_stack_is_refused_by_the_database(
    make_stack, first, second
):
    stack = make_stack()
    existing = new_operation(stack, first)
    with pytest.raises(IntegrityError), transaction.atomic():
        new_operation(stack, second, kind=OperationKind.RESTART)
    assert list(Operation.objects.values_list("pk", "status")) == [(existing.pk, first)]


@pytest.mark.parametrize("finished", FINISHED)
def test_a_finished_operation_does_not_block_a_new_one(make_stack, finished):
    stack = make_stack()
    new_operation(stack, finished)
    new_operation(stack, finished, kind=OperationKind.RESTART)
    queued = new_operation(stack, OperationStatus.QUEUED, kind=OperationKind.REDEPLOY)
    assert list(Operation.objects.in_flight().filter(stack=stack)) == [queued]
    assert Operation.objects.filter(stack=stack).count() == 3


def test_operations_of_different_stacks_are_independent(make_stack):
    one = make_stack("customer-123", "main")
    two = make_stack("customer-123", "other")
    three = make_stack("customer-456", "customer-456-main")
    new_operation(one, OperationStatus.RUNNING)
    new_operation(two, OperationStatus.QUEUED)
    new_operation(three, OperationStatus.QUEUED)
    assert Operation.objects.in_flight().count() == 3


def test_an_operation_cannot_be_moved_back_in_flight_beside_another(make_stack):
    stack = make_stack()
    done = new_operation(stack, OperationStatus.FAILED)
    new_operation(stack, OperationStatus.QUEUED, kind=OperationKind.RESTART)
    with pytest.raises(IntegrityError), transaction.atomic():
        Operation.objects.filter(pk=done.pk).update(status=OperationStatus.QUEUED)
    done.refresh_from_db()
    assert done.status == OperationStatus.FAILED


def test_the_in_flight_rule_is_also_reported_by_validate_constraints(make_stack):
    stack = make_stack()
    new_operation(stack)
    second = Operation(stack=stack, kind=OperationKind.STOP, requested_by_repr="operator")
    with pytest.raises(ValidationError) as caught:
        second.validate_constraints()
    assert "already queued or running" in str(caught.value)


def test_claim_succeeds_once_then_fails(make_stack):
    operation = new_operation(make_stack())
    assert Operation.objects.claim(operation.pk) is True
    operation.refresh_from_db()
    assert operation.status == OperationStatus.RUNNING
    assert operation.started_at is not None
    started = operation.started_at

    assert Operation.objects.claim(operation.pk) is False
    operation.refresh_from_db()
    assert operation.status == OperationStatus.RUNNING
    assert operation.started_at == started


@pytest.mark.parametrize("status", [OperationStatus.SUCCEEDED, OperationStatus.FAILED])
def test_claim_refuses_a_finished_operation(make_stack, status):
    operation = new_operation(make_stack(), status)
    assert Operation.objects.claim(operation.pk) is False
    operation.refresh_from_db()
    assert operation.status == status
    assert operation.started_at is None


def test_claim_of_a_missing_operation_is_false(db):
    assert Operation.objects.claim(999_999) is False


# --------------------------------------------------------------------------------------------
# stack names and domains at the database level (full_clean bypassed)


def test_the_database_refuses_two_live_stacks_with_one_name_in_one_tenant(make_stack):
    first = make_stack("customer-123", "main")
    with pytest.raises(IntegrityError), transaction.atomic():
        Stack.objects.create(
            tenant=first.tenant, project_name="p", stack_name="main", template_name="base-llm"
        )
    assert Stack.objects.filter(stack_name="main").count() == 1


@pytest.mark.parametrize("status", sorted(set(StackStatus.values) - {StackStatus.DELETED}))
def test_every_live_status_holds_the_name(make_stack, status):
    first = make_stack("customer-123", "main", status=status)
    with pytest.raises(IntegrityError), transaction.atomic():
        Stack.objects.create(
            tenant=first.tenant, project_name="p", stack_name="main", template_name="base-llm"
        )


def test_the_database_allows_reusing_the_name_of_deleted_stacks(make_stack):
    first = make_stack("customer-123", "main", status=StackStatus.DELETED)
    make_stack("customer-123", "main", status=StackStatus.DELETED)
    Stack.objects.create(
        tenant=first.tenant, project_name="p", stack_name="main", template_name="base-llm"
    )
    statuses = sorted(Stack.objects.filter(stack_name="main").values_list("status", flat=True))
    assert statuses == ["deleted", "deleted", "pending"]


def test_the_database_refuses_the_same_live_stack_name_in_another_tenant(make_stack, make_tenant):
    # Container names (cf-agent-<stack>) share one namespace per Docker host.
    make_stack("customer-123", "main")
    other = make_tenant("customer-456")
    with pytest.raises(IntegrityError), transaction.atomic():
        Stack.objects.create(
            tenant=other, project_name="p", stack_name="main", template_name="base-llm"
        )
    assert list(Stack.objects.filter(stack_name="main").values_list("tenant__slug", flat=True)) == [
        "customer-123"
    ]


def test_the_database_lets_another_tenant_reuse_the_name_of_a_deleted_stack(make_stack):
    make_stack("customer-123", "main", status=StackStatus.DELETED)
    make_stack("customer-456", "main")
    rows = Stack.objects.filter(stack_name="main").order_by("tenant__slug")
    assert list(rows.values_list("tenant__slug", "status")) == [
        ("customer-123", "deleted"),
        ("customer-456", "pending"),
    ]


def test_the_database_refuses_one_domain_on_two_live_stacks(make_stack):
    make_stack("customer-123", "main", domains={"webui": "demo.customer123.com"})
    other = make_stack("customer-456", "other")
    with pytest.raises(IntegrityError), transaction.atomic():
        StackDomain.objects.create(stack=other, service="webui", domain="demo.customer123.com")
    assert StackDomain.objects.filter(domain="demo.customer123.com").count() == 1


def test_the_database_refuses_one_domain_twice_on_the_same_stack(make_stack):
    stack = make_stack(domains={"webui": "demo.customer123.com"})
    with pytest.raises(IntegrityError), transaction.atomic():
        StackDomain.objects.create(stack=stack, service="api", domain="demo.customer123.com")


def test_the_database_allows_a_released_domain_to_be_taken_again(make_stack):
    first = make_stack("customer-123", "main", domains={"webui": "demo.customer123.com"})
    first.transition_to(StackStatus.DELETING)
    first.transition_to(StackStatus.DELETED)
    other = make_stack("customer-456", "main")
    StackDomain.objects.create(stack=other, service="webui", domain="demo.customer123.com")
    rows = StackDomain.objects.filter(domain="demo.customer123.com")
    assert rows.count() == 2
    assert [d.stack_id for d in rows.filter(released_at__isnull=True)] == [other.pk]


# --------------------------------------------------------------------------------------------
# the status machine

ALL_PAIRS = list(itertools.product(StackStatus.values, StackStatus.values))


@pytest.mark.parametrize(("start", "to"), ALL_PAIRS)
def test_transition_to_follows_the_state_machine(make_stack, start, to):
    stack = make_stack(status=start)
    if to in STACK_TRANSITIONS[start]:
        stack.transition_to(to, detail="because")
        assert stack.status == to
        stack.refresh_from_db()
        assert (stack.status, stack.status_detail) == (to, "because")
    else:
        with pytest.raises(InvalidTransition):
            stack.transition_to(to)
        assert stack.status == start
        stack.refresh_from_db()
        assert stack.status == start


def test_the_machine_is_the_one_of_the_design():
    s = StackStatus
    t = STACK_TRANSITIONS
    assert set(t) == set(s.values)
    assert s.DEPLOYING in t[s.PENDING]
    assert {s.RUNNING, s.ERROR} <= t[s.DEPLOYING]
    assert s.STOPPED in t[s.RUNNING] and s.RUNNING in t[s.STOPPED]
    assert s.DELETED in t[s.DELETING]
    assert t[s.DELETED] == frozenset()
    # deleted is reached only through deleting
    assert [start for start, targets in t.items() if s.DELETED in targets] == [s.DELETING]
    # nothing jumps straight from pending to running
    assert s.RUNNING not in t[s.PENDING]
    for start, targets in t.items():
        assert start not in targets


def test_a_stale_status_in_memory_raises_and_changes_nothing(make_stack):
    stack = make_stack(status=StackStatus.PENDING)
    worker_a = Stack.objects.get(pk=stack.pk)
    worker_b = Stack.objects.get(pk=stack.pk)
    worker_a.transition_to(StackStatus.DEPLOYING, detail="worker a")
    with pytest.raises(InvalidTransition):
        worker_b.transition_to(StackStatus.DEPLOYING, detail="worker b")
    assert worker_b.status == StackStatus.PENDING  # not pretended to have moved
    stack.refresh_from_db()
    assert (stack.status, stack.status_detail) == (StackStatus.DEPLOYING, "worker a")


def test_a_stale_status_cannot_skip_a_step(make_stack):
    stack = make_stack(status=StackStatus.RUNNING)
    stale = Stack.objects.get(pk=stack.pk)
    stack.transition_to(StackStatus.DELETING)
    stack.transition_to(StackStatus.DELETED)
    # allowed from the stale "running", but the row is deleted now
    with pytest.raises(InvalidTransition):
        stale.transition_to(StackStatus.STOPPED)
    stack.refresh_from_db()
    assert stack.status == StackStatus.DELETED


def test_deleting_a_stack_sets_deleted_at_and_releases_its_domains(make_stack):
    stack = make_stack(
        status=StackStatus.RUNNING, domains={"webui": "demo.c.com", "api": "api.c.com"}
    )
    other = make_stack("customer-456", "main", domains={"webui": "other.c.com"})
    stack.transition_to(StackStatus.DELETING)
    stack.refresh_from_db()
    assert stack.deleted_at is None
    assert stack.domains.filter(released_at__isnull=True).count() == 2

    stack.transition_to(StackStatus.DELETED)
    stack.refresh_from_db()
    assert stack.status == StackStatus.DELETED
    assert stack.deleted_at is not None
    released = list(stack.domains.values_list("released_at", flat=True))
    assert len(released) == 2
    assert all(at == stack.deleted_at for at in released)
    # the other stack's domain stays owned
    assert other.domains.get().released_at is None
    # the tombstone is kept
    assert Stack.objects.filter(pk=stack.pk).exists()


def test_only_deleted_sets_deleted_at(make_stack):
    stack = make_stack()
    for to in (StackStatus.DEPLOYING, StackStatus.RUNNING, StackStatus.STOPPED):
        stack.transition_to(to)
        stack.refresh_from_db()
        assert stack.deleted_at is None
