"""Bulk by query as a background job (stacks.services.bulk, stacks.tasks.bulk_request_task):
confirming costs the same few queries for 30 stacks or 300 and queues one job with the ids
matching then; the job requests each as a background operation, a chunk at a time, skipping
(and counting) a stack that cannot take it; its outcome, or how far it got, is an audit event;
running it again requests no stack twice."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cfadmin.models import AuditAction, AuditEvent
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation, Stack
from stacks.services import bulk
from tests.unit.test_bulk_by_query import BULK, confirm, record_jobs, run_bulk_jobs

RUNNING = {"status__exact": StackStatus.RUNNING}


@pytest.fixture
def sent_jobs(monkeypatch) -> list[tuple[str, tuple, dict]]:
    return record_jobs(monkeypatch)


@pytest.fixture
def running_stacks(make_tenant):
    """make(count): `count` more running stacks of one tenant; every stack id, in order."""
    made: list[int] = []

    def make(count: int) -> list[int]:
        tenant = make_tenant("bulk-customer") if not made else Stack.objects.first().tenant
        first = len(made)
        Stack.objects.bulk_create(
            Stack(
                tenant=tenant,
                stack_name=f"bulk-{i}",
                project_name=f"bulk-project-{i}",
                template_name="telegram-bot",
                status=StackStatus.RUNNING,
                coolify_service_uuid=f"bulk{i:05d}",
            )
            for i in range(first, first + count)
        )
        made[:] = Stack.objects.order_by("pk").values_list("pk", flat=True)
        return list(made)

    return make


def the_request() -> AuditEvent:
    return AuditEvent.objects.get(action=AuditAction.OPERATION, changes__job=bulk.BULK_JOB)


def outcomes() -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action=AuditAction.OPERATION_RESULT, changes__request__isnull=False
        ).order_by("id")
    )


def run_job(ids: list[int], request_id: int, actor, **options) -> bulk.BulkResult:
    return bulk.request_for_ids(
        ids,
        OperationKind.REDEPLOY,
        actor=actor,
        description="status: Running",
        filters=dict(RUNNING),
        request_id=request_id,
        **options,
    )


@pytest.mark.django_db
def test_confirming_costs_the_same_queries_for_300_stacks_as_for_30(
    client,
    operator,
    running_stacks,
    sent_jobs,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
):
    client.force_login(operator)
    data = {"query": urlencode(RUNNING), "post": "yes", "kind": OperationKind.REDEPLOY}
    running_stacks(30)
    with (
        CaptureQueriesContext(connection) as for_30,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert client.post(reverse(BULK), {**data, "count": "30"}).status_code == 302
    ids = running_stacks(270)

    with (
        django_assert_max_num_queries(len(for_30)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(reverse(BULK), {**data, "count": "300"})

    assert response.status_code == 302
    assert len(for_30) <= 12  # a few: the list's filters, the ids, the audit event, the session
    assert not Operation.objects.exists()  # the job requests them, not the web request
    [(_, first_args, _), (func, args, options)] = sent_jobs
    assert func == bulk.BULK_TASK and options["timeout"] > 0
    assert len(first_args[0]) == 30
    assert args[0] == ids and all(type(pk) is int for pk in args[0])  # plain values only
    assert args[1:3] == (OperationKind.REDEPLOY.value, operator.pk)


@pytest.mark.django_db
def test_the_job_requests_them_all_and_skips_a_stack_busy_by_then(
    client, operator, running_stacks, sent_jobs, django_capture_on_commit_callbacks
):
    """Confirmed for 300 (two chunks of 200); one gets an operation before the job runs."""
    ids = running_stacks(300)
    client.force_login(operator)
    confirm(
        client, django_capture_on_commit_callbacks, RUNNING, OperationKind.REDEPLOY, count="300"
    )
    busy = Stack.objects.get(pk=ids[250])
    Operation.objects.create(stack=busy, kind=OperationKind.RESTART, status=OperationStatus.QUEUED)

    [counts] = run_bulk_jobs(sent_jobs)

    assert counts == {"matched": 300, "queued": 299, "skipped": 1}
    redeploys = Operation.objects.filter(kind=OperationKind.REDEPLOY)
    assert sorted(redeploys.values_list("stack_id", flat=True)) == sorted(set(ids) - {busy.pk})
    assert all(op.background and op.status == OperationStatus.QUEUED for op in redeploys)
    [outcome] = outcomes()
    assert outcome.changes["request"] == the_request().pk
    assert outcome.changes["job"] == f"{bulk.BULK_JOB}:done"
    assert (outcome.changes["queued"], outcome.changes["skipped"]) == (299, 1)
    assert outcome.actor == operator
    assert "Bulk redeploy of 300 stacks" in outcome.message
    assert "299 queued as background operations, 1 skipped" in outcome.message
    assert f"{busy} already has an operation queued or running" in outcome.message


@pytest.mark.django_db
def test_the_message_links_to_the_background_operations(
    client, operator, running_stacks, sent_jobs, django_capture_on_commit_callbacks
):
    running_stacks(3)
    client.force_login(operator)

    page = confirm(client, django_capture_on_commit_callbacks, RUNNING, OperationKind.RESTART)
    run_bulk_jobs(sent_jobs)

    html = page.content.decode()
    assert "Bulk restart of 3 stacks queued" in html
    link = html.split("Operations, background restart")[0].rsplit('href="', 1)[1].split('"')[0]
    listing = client.get(link.replace("&amp;", "&"))
    assert listing.status_code == 200
    assert listing.context["cl"].queryset.count() == 3


@pytest.mark.django_db
def test_running_the_job_again_requests_no_stack_twice(operator, running_stacks):
    ids = running_stacks(12)
    first = run_job(ids, request_id=7, actor=operator, chunk_size=5)
    # Some finished meanwhile: not busy any more, yet this request asked for them already.
    Operation.objects.filter(stack_id__in=ids[:4]).update(
        status=OperationStatus.SUCCEEDED, finished_at=timezone.now()
    )

    again = run_job(ids, request_id=7, actor=operator, chunk_size=5)

    assert (first.queued, again.queued, again.skipped) == (12, 0, 12)
    assert Operation.objects.count() == 12
    assert "already requested by this request" in again.skipped_examples[0]
    assert [o.changes["queued"] for o in outcomes()] == [12, 0]


@pytest.mark.django_db
def test_another_request_skips_the_stacks_still_busy(operator, running_stacks):
    """request_operations refuses a stack with an operation queued or running (a constraint)."""
    ids = running_stacks(6)
    run_job(ids, request_id=7, actor=operator)
    Operation.objects.filter(stack_id__in=ids[:2]).update(
        status=OperationStatus.SUCCEEDED, finished_at=timezone.now()
    )

    other = run_job(ids, request_id=8, actor=operator)

    assert (other.queued, other.skipped) == (2, 4)
    assert all("already has an operation queued or running" in r for r in other.skipped_examples)
    assert Operation.objects.count() == 8


@pytest.mark.django_db
def test_a_job_failing_midway_keeps_what_it_requested_and_says_how_far(
    operator, running_stacks, monkeypatch
):
    ids = running_stacks(25)
    real = bulk.request_operations
    calls: list[int] = []

    def fails_on_the_third_chunk(stacks, kind, **options):
        calls.append(len(stacks))
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return real(stacks, kind, **options)

    monkeypatch.setattr(bulk, "request_operations", fails_on_the_third_chunk)

    with pytest.raises(RuntimeError, match="database went away"):
        run_job(ids, request_id=7, actor=operator, chunk_size=10)

    assert sorted(Operation.objects.values_list("stack_id", flat=True)) == ids[:20]
    [outcome] = outcomes()
    assert outcome.changes["job"] == f"{bulk.BULK_JOB}:failed"
    assert (outcome.changes["processed"], outcome.changes["queued"]) == (20, 20)
    assert "stopped after 20 of 25" in outcome.message
    assert "database went away" in outcome.message


@pytest.mark.django_db
def test_a_stack_gone_before_the_job_runs_is_skipped(operator, running_stacks):
    ids = running_stacks(3)
    Stack.objects.filter(pk=ids[1]).delete()

    result = run_job(ids, request_id=7, actor=operator)

    assert (result.queued, result.skipped) == (2, 1)
    assert result.skipped_examples == [f"stack #{ids[1]} no longer exists"]


@pytest.mark.django_db
def test_a_count_changed_since_the_page_was_shown_is_asked_again(
    client, operator, running_stacks, sent_jobs, django_capture_on_commit_callbacks
):
    running_stacks(5)
    client.force_login(operator)

    page = confirm(
        client, django_capture_on_commit_callbacks, RUNNING, OperationKind.RESTART, count="4"
    )

    html = page.content.decode()
    assert "Stacks: 5 match the filter now, not the 4 shown" in html
    assert "<strong>5 stacks</strong>" in html  # the new count, to confirm again
    assert sent_jobs == [] and not AuditEvent.objects.filter(changes__job=bulk.BULK_JOB).exists()


@pytest.mark.django_db
def test_nothing_matching_queues_nothing(
    client, operator, running_stacks, sent_jobs, django_capture_on_commit_callbacks
):
    running_stacks(2)
    client.force_login(operator)

    page = confirm(
        client,
        django_capture_on_commit_callbacks,
        {"status__exact": StackStatus.STOPPED},
        OperationKind.START,
    )

    assert "Stacks: none match the filter now" in page.content.decode()
    assert sent_jobs == []
