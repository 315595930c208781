"""Bulk by query (issue 17): the stack list's filters drive "Apply to all N matching…"; the
confirmation page shows the count and the filter in words; confirming queues one job that
requests the operation as background operations on exactly the matching stacks
(stacks.services.bulk), audited once for the request, once per operation and once for the
outcome; only kinds the person may request. The job itself: test_bulk_by_query_job.py."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils.module_loading import import_string

from cfadmin.models import AuditAction, AuditEvent
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.compose import all_manifests
from stacks.models import Operation, Stack
from stacks.services.bulk import BULK_TASK, BulkRefused, request_for_ids
from tenants.models import Tenant

CURRENT = {manifest.name: manifest.version for manifest in all_manifests()}
OUTDATED = "0ld0ld0ld0ld"
BULK = "admin:stacks_stack_bulk_query"
FILTER = {
    "template_name": "telegram-bot",
    "template_version_is": "outdated",
    "status__exact": StackStatus.RUNNING,
}


def fleet(count: int = 200) -> set[int]:
    """`count` stacks over 5 tenants, 3 templates, current or outdated, running or stopped;
    returns the ids of those FILTER matches (outdated, running telegram-bot stacks)."""
    tenants = Tenant.objects.bulk_create(
        Tenant(slug=f"customer-{i}", name=f"Customer {i}") for i in range(5)
    )
    templates = list(CURRENT)
    stacks = []
    for i in range(count):
        template = templates[i % 3]
        stacks.append(
            Stack(
                tenant=tenants[i % 5],
                stack_name=f"stack-{i}",
                project_name=f"project-{i}",
                template_name=template,
                template_version=OUTDATED if i % 2 else CURRENT[template],
                status=StackStatus.STOPPED if i % 7 == 0 else StackStatus.RUNNING,
                coolify_service_uuid=f"svc{i:05d}",
            )
        )
    Stack.objects.bulk_create(stacks)
    return set(
        Stack.objects.filter(template_name="telegram-bot", status=StackStatus.RUNNING)
        .exclude(template_version=CURRENT["telegram-bot"])
        .values_list("pk", flat=True)
    )


def bulk_url(params: dict[str, str]) -> str:
    return reverse(BULK) + "?" + urlencode(params)


def record_jobs(monkeypatch) -> list[tuple[str, tuple, dict]]:
    """Jobs cfadmin.jobs.enqueue hands to the broker (after the commit: run the request inside
    django_capture_on_commit_callbacks(execute=True)), recorded instead of sent."""
    sent: list[tuple[str, tuple, dict]] = []
    monkeypatch.setattr(
        "django_q.tasks.async_task",
        lambda func, *args, **options: sent.append((func, args, options)),
    )
    return sent


@pytest.fixture
def sent_jobs(monkeypatch) -> list[tuple[str, tuple, dict]]:
    return record_jobs(monkeypatch)


def run_bulk_jobs(sent: list[tuple[str, tuple, dict]]) -> list[dict]:
    """What a worker does with the bulk jobs sent (their arguments are plain values)."""
    return [import_string(func)(*args) for func, args, _ in sent if func == BULK_TASK]


def confirm(client, capture, params: dict[str, str], kind: str, **fields: str):
    """Post "Yes, apply" for the list filtered by `params`, its jobs sent after the commit."""
    with capture(execute=True):
        return client.post(
            reverse(BULK),
            {"query": urlencode(params), "post": "yes", "kind": kind, **fields},
            follow=True,
        )


@pytest.mark.django_db
def test_the_list_links_to_the_bulk_page_with_its_filters(client, operator):
    fleet(20)
    client.force_login(operator)

    page = client.get(reverse("admin:stacks_stack_changelist") + "?" + urlencode(FILTER))

    html = page.content.decode()
    assert 'id="cf-bulk-query"' in html
    link = html.split('id="cf-bulk-query"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert link.startswith(reverse(BULK)) and "template_version_is=outdated" in link
    assert "Apply to all" in html


@pytest.mark.django_db
def test_the_confirmation_page_shows_the_count_and_the_filter_in_words(client, operator):
    matching = fleet()
    client.force_login(operator)

    page = client.get(bulk_url(FILTER))

    html = page.content.decode()
    assert page.status_code == 200
    assert f"<strong>{len(matching)} stacks</strong>" in html
    for words in ("template name: telegram-bot", "template version: outdated", "status: Running"):
        assert words in html
    for kind in (OperationKind.REDEPLOY, OperationKind.RESTART, OperationKind.STOP):
        assert f'value="{kind.value}"' in html
    assert 'value="delete"' not in html
    assert not Operation.objects.exists()  # nothing before confirming


@pytest.mark.django_db
def test_confirming_queues_background_operations_on_exactly_the_matching_stacks(
    client, operator, sent_jobs, django_capture_on_commit_callbacks
):
    matching = fleet()
    busy = Stack.objects.get(pk=min(matching))
    Operation.objects.create(stack=busy, kind=OperationKind.RESTART, status=OperationStatus.RUNNING)
    client.force_login(operator)
    query = urlencode(FILTER)

    response = confirm(
        client,
        django_capture_on_commit_callbacks,
        FILTER,
        OperationKind.REDEPLOY,
        count=str(len(matching)),
    )

    assert response.redirect_chain[-1][0].endswith("?" + query)
    text = response.content.decode()
    assert f"Bulk redeploy of {len(matching)} stacks queued" in text
    assert "background__exact=1" in text  # where to watch them appear
    assert not Operation.objects.filter(kind=OperationKind.REDEPLOY).exists()  # the job's work
    [bulk_event] = AuditEvent.objects.filter(message__startswith="Bulk redeploy")
    assert bulk_event.action == AuditAction.OPERATION and bulk_event.actor == operator
    assert bulk_event.changes["count"] == len(matching)
    assert bulk_event.changes["filters"] == {k: str(v) for k, v in FILTER.items()}
    assert "template version: outdated" in bulk_event.message

    [outcome] = run_bulk_jobs(sent_jobs)

    assert outcome == {"matched": len(matching), "queued": len(matching) - 1, "skipped": 1}
    redeploys = Operation.objects.filter(kind=OperationKind.REDEPLOY)
    assert set(redeploys.values_list("stack_id", flat=True)) == matching - {busy.pk}
    assert all(op.background and op.status == OperationStatus.QUEUED for op in redeploys)
    assert {op.requested_by for op in redeploys} == {operator}
    per_operation = AuditEvent.objects.filter(
        message="Redeploy requested", action=AuditAction.OPERATION
    )
    assert per_operation.count() == len(matching) - 1
    done = AuditEvent.objects.get(
        action=AuditAction.OPERATION_RESULT, changes__request=bulk_event.pk
    )
    assert f"{len(matching) - 1} queued as background operations, 1 skipped" in done.message


@pytest.mark.django_db
def test_the_search_and_the_tenant_narrow_it_too(
    client, operator, sent_jobs, django_capture_on_commit_callbacks
):
    fleet(60)
    client.force_login(operator)
    params = {"tenant": "customer-2", "q": "stack-1"}

    confirm(client, django_capture_on_commit_callbacks, params, OperationKind.RESTART)
    run_bulk_jobs(sent_jobs)

    expected = set(
        Stack.objects.filter(
            tenant__slug="customer-2", stack_name__startswith="stack-1", status=StackStatus.RUNNING
        ).values_list("pk", flat=True)
    )
    assert expected
    assert set(Operation.objects.values_list("stack_id", flat=True)) == expected


@pytest.mark.django_db
def test_the_job_works_a_chunk_at_a_time(operator):
    matching = fleet(90)

    result = request_for_ids(
        sorted(matching),
        OperationKind.RESTART,
        actor=operator,
        description="test",
        filters={},
        request_id=1,
        chunk_size=4,
    )

    assert (result.matched, result.queued, result.skipped) == (len(matching), len(matching), 0)
    assert set(Operation.objects.values_list("stack_id", flat=True)) == matching
    with pytest.raises(BulkRefused, match="operation: one of"):
        request_for_ids(
            [1], OperationKind.DELETE, actor=operator, description="", filters={}, request_id=1
        )


@pytest.mark.django_db
def test_people_without_operation_permissions_get_no_link_and_no_page(client, support, viewer):
    fleet(10)
    for person in (support, viewer):
        client.force_login(person)
        listing = client.get(reverse("admin:stacks_stack_changelist"))
        assert 'id="cf-bulk-query"' not in listing.content.decode()
        assert client.get(bulk_url(FILTER)).status_code == 403
        response = client.post(
            reverse(BULK),
            {"query": urlencode(FILTER), "post": "yes", "kind": OperationKind.RESTART},
        )
        assert response.status_code == 403
    assert not Operation.objects.exists()


@pytest.mark.django_db
def test_a_kind_the_person_may_not_request_is_refused(client, operator):
    fleet(10)
    client.force_login(operator)

    page = client.post(
        reverse(BULK), {"query": urlencode(FILTER), "post": "yes", "kind": OperationKind.DELETE}
    )

    assert page.status_code == 200
    assert "Operation: choose one of" in page.content.decode()
    assert not Operation.objects.exists()


@pytest.mark.django_db
def test_the_rollout_ring_filters_by_the_tenants_ring(client, operator):
    from tenants.models import RolloutRing as rings

    fleet(30)
    Tenant.objects.filter(slug="customer-1").update(rollout_ring=rings.LAST)
    client.force_login(operator)

    page = client.get(bulk_url({"ring": rings.LAST}))

    expected = Stack.objects.filter(
        tenant__slug="customer-1", status__in=[StackStatus.RUNNING, StackStatus.STOPPED]
    ).count()
    assert f"<strong>{expected} stacks</strong>" in page.content.decode()
    assert f"rollout ring: {rings.LAST.label}" in page.content.decode()
