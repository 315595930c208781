"""Issue 13 for the stacks and tenants pages: each page makes the same number of queries with
few rows as with many (and at most 12 on the lists), long inlines show the latest rows with a
link to them all, the reconcile report is grouped by kind and paginated with a bulk repair per
kind, and the search finds stacks by id, uuid, slug and domain prefix without a join."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cfadmin.models import AuditEvent
from cfadmin.paginators import EstimatedCountPaginator, count_rows
from stacks import reconcile, tasks
from stacks.admin.inlines import OperationInline
from stacks.choices import DriftKind, OperationStatus, Repair, StackStatus
from stacks.models import Operation, OperationStep, ReconcileRun, Stack
from stacks.reconcile import Drift, stored_drift

pytestmark = pytest.mark.django_db

LIST_BUDGET = 12
LATEST = reverse("admin:stacks_reconcile")


def queries(client, url: str) -> tuple[int, str]:
    client.get(url)  # warm the per-process caches (content types, permissions)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured), response.content.decode()


def add_stacks(make_stack, first: int, last: int, tenants: int = 3) -> None:
    for n in range(first, last):
        make_stack(
            f"customer-{n % tenants}",
            f"customer-{n % tenants}-s{n:03d}",
            status=StackStatus.RUNNING if n % 4 else StackStatus.ERROR,
            domains={"webui": f"app{n}.customer{n % tenants}.example.com"},
            coolify_service_uuid=f"svc{n:06d}",
            pocketbase_id=f"pbrec{n:010d}",
        )


def add_operations(stack: Stack, count: int) -> None:
    for n in range(count):
        operation = Operation.objects.create(
            stack=stack,
            kind="restart",
            status=OperationStatus.SUCCEEDED,
            requested_by_repr="operator",
            parameters={"note": f"p{n}"},
            result={"big": "x" * 100},
        )
        OperationStep.objects.create(
            operation=operation,
            position=1,
            name="restart",
            outcome="ok",
            started_at=timezone.now(),
        )


def drift_rows(count: int, kind: str = DriftKind.MISSING_RECORD) -> list[dict[str, Any]]:
    repairs = {
        DriftKind.MISSING_RECORD: [Repair.PUSH_RECORD],
        DriftKind.ORPHAN_RECORD: [Repair.DELETE_RECORD],
        DriftKind.SERVICE_STATUS: [Repair.TAKE_COOLIFY_STATUS],
    }[kind]
    rows = []
    for n in range(count):
        if kind == DriftKind.ORPHAN_RECORD:
            drift = Drift(kind, "gone", f"gone-{n}", "orphan", repairs, record_id=f"rec-{n}")
        else:
            drift = Drift(kind, "customer-1", f"s{n}", f"{kind} {n}", repairs, stack_id=1000 + n)
        rows.append(drift.as_dict())
    return rows


def make_run(drift: list[dict[str, Any]]) -> ReconcileRun:
    return ReconcileRun.objects.create(
        requested_by_repr="schedule",
        stacks_checked=len(drift),
        finished_at=timezone.now(),
        drift=drift,
    )


# --- query counts stay the same as rows grow -----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        reverse("admin:stacks_stack_changelist"),
        reverse("admin:stacks_stack_changelist") + "?status__exact=running",
        reverse("admin:stacks_stack_changelist") + "?template_version_is=outdated",
        reverse("admin:stacks_stack_changelist") + "?tenant=customer-1",
        reverse("admin:stacks_stack_changelist") + "?q=customer-1",
        reverse("admin:stacks_stack_changelist") + "?q=app1",
        reverse("admin:stacks_stack_changelist") + "?o=-6",  # by updated_at
        reverse("admin:tenants_tenant_changelist"),
        reverse("admin:tenants_tenant_changelist") + "?q=customer",
        reverse("admin:stacks_operation_changelist"),
        reverse("admin:stacks_operation_changelist") + "?q=customer-1",
        reverse("admin:stacks_reconcilerun_changelist"),
        reverse("admin:stacks_templates"),
    ],
)
def test_lists_make_the_same_queries_for_5_and_60_rows(client, superuser, make_stack, url):
    client.force_login(superuser)
    add_stacks(make_stack, 0, 5)
    add_operations(Stack.objects.first(), 5)
    make_run(drift_rows(5))
    few, _ = queries(client, url)
    add_stacks(make_stack, 5, 60)
    for stack in Stack.objects.all()[:12]:
        add_operations(stack, 5)
    for _ in range(10):
        make_run(drift_rows(60))
    many, _ = queries(client, url)
    assert many == few
    assert many <= LIST_BUDGET


def test_the_stack_page_makes_the_same_queries_for_5_and_60_operations(
    client, superuser, make_stack
):
    client.force_login(superuser)
    stack = make_stack(status=StackStatus.RUNNING, domains={"webui": "a.example.com"})
    url = reverse("admin:stacks_stack_change", args=[stack.pk])
    add_operations(stack, 5)
    few, _ = queries(client, url)
    add_operations(stack, 55)
    many, html = queries(client, url)
    assert many == few
    assert html.count('/change/">#') == OperationInline.latest_limit  # the latest, linked


def test_the_stack_page_shows_the_latest_operations_and_links_to_all(client, superuser, make_stack):
    client.force_login(superuser)
    stack = make_stack(status=StackStatus.RUNNING)
    add_operations(stack, 45)
    newest = list(stack.operations.values_list("pk", flat=True)[: OperationInline.latest_limit])
    _, html = queries(client, reverse("admin:stacks_stack_change", args=[stack.pk]))
    for pk in newest:
        assert f'href="/admin/stacks/operation/{pk}/change/">#{pk}</a>' in html
    oldest = stack.operations.order_by("requested_at", "id").first()
    assert f">#{oldest.pk}</a>" not in html
    all_url = reverse("admin:stacks_operation_changelist") + f"?stack__id__exact={stack.pk}"
    assert f'<a href="{all_url}">all 45 operations →</a>' in html
    assert "xxxxxxxxxx" not in html  # no result JSON on the page


def test_the_operations_link_opens_the_stacks_operations(client, superuser, make_stack):
    client.force_login(superuser)
    stack = make_stack(status=StackStatus.RUNNING)
    other = make_stack("customer-9", status=StackStatus.RUNNING)
    add_operations(stack, 3)
    add_operations(other, 2)
    url = reverse("admin:stacks_operation_changelist") + f"?stack__id__exact={stack.pk}"
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 3


def test_a_stack_with_few_operations_has_no_link(client, superuser, make_stack):
    client.force_login(superuser)
    stack = make_stack(status=StackStatus.RUNNING)
    add_operations(stack, 3)
    _, html = queries(client, reverse("admin:stacks_stack_change", args=[stack.pk]))
    assert "all 3 operations" not in html


def test_the_tenant_page_shows_the_latest_20_stacks_and_links_to_all(client, superuser, make_stack):
    client.force_login(superuser)
    add_stacks(make_stack, 0, 5, tenants=1)
    tenant = Stack.objects.first().tenant
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    few, _ = queries(client, url)
    add_stacks(make_stack, 5, 60, tenants=1)
    many, html = queries(client, url)
    assert many == few
    assert html.count('class="field-stack_link"') == 20
    assert "customer-0-s059" in html  # the most recently changed
    assert "customer-0-s000" not in html
    stacks_url = reverse("admin:stacks_stack_changelist") + "?tenant=customer-0"
    assert f'<a href="{stacks_url}">all 60 stacks →</a>' in html


def test_the_operation_page_makes_the_same_queries_whatever_the_history(
    client, superuser, make_stack
):
    client.force_login(superuser)
    stack = make_stack(status=StackStatus.RUNNING)
    add_operations(stack, 5)
    url = reverse("admin:stacks_operation_change", args=[stack.operations.first().pk])
    few, _ = queries(client, url)
    add_operations(stack, 55)
    url = reverse("admin:stacks_operation_change", args=[stack.operations.first().pk])
    many, _ = queries(client, url)
    assert many == few <= LIST_BUDGET


def test_the_operation_list_loads_no_json(client, superuser, make_stack):
    client.force_login(superuser)
    add_operations(make_stack(status=StackStatus.RUNNING), 3)
    client.get(reverse("admin:stacks_operation_changelist"))
    with CaptureQueriesContext(connection) as captured:
        client.get(reverse("admin:stacks_operation_changelist"))
    rows = [q["sql"] for q in captured if 'FROM "stacks_operation"' in q["sql"]]
    assert rows and all('"stacks_operation"."result"' not in sql for sql in rows)
    assert all('"stacks_operation"."parameters"' not in sql for sql in rows)


def test_the_run_list_counts_drift_without_loading_it(client, superuser):
    client.force_login(superuser)
    make_run(drift_rows(7))
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("admin:stacks_reconcilerun_changelist"))
    assert '<td class="field-drift_count">7</td>' in response.content.decode()
    runs = [q["sql"] for q in captured if 'FROM "stacks_reconcilerun"' in q["sql"]]
    assert all('"stacks_reconcilerun"."drift",' not in sql for sql in runs)


# --- the reconcile report: grouped by kind, paginated ---------------------------------------------


def test_the_report_makes_the_same_queries_for_5_and_200_drift_rows(client, operator):
    client.force_login(operator)
    make_run(drift_rows(5) + drift_rows(2, DriftKind.ORPHAN_RECORD))
    few, _ = queries(client, LATEST)
    make_run(drift_rows(200) + drift_rows(80, DriftKind.ORPHAN_RECORD))
    many, html = queries(client, LATEST)
    assert many == few <= LIST_BUDGET
    assert "280 drift found" in html
    assert html.count('class="cf-drift cf-drift-missing_record"') == 50
    assert html.count('class="cf-drift cf-drift-orphan_record"') == 50


def test_the_report_groups_rows_by_kind_with_counts(client, viewer):
    client.force_login(viewer)
    make_run(
        drift_rows(3, DriftKind.SERVICE_STATUS)
        + drift_rows(120)
        + drift_rows(2, DriftKind.ORPHAN_RECORD)
    )
    html = client.get(LATEST).content.decode()
    kinds = html.split('id="cf-drift-kinds"')[1].split("</table>")[0]
    assert kinds.index("Coolify status differs") < kinds.index("PocketBase record missing")
    assert '<td class="cf-drift-count">120</td>' in kinds
    assert '<td class="cf-drift-count">3</td>' in kinds
    assert '<td class="cf-drift-count">2</td>' in kinds
    assert "1\u201350 shown" in html
    assert "page 1 of 3" in html
    assert f'href="{LATEST}?kind=missing_record&amp;page=2#cf-drift-missing_record"' in html


def test_a_page_of_one_kind_leaves_the_others_on_their_first_page(client, viewer):
    client.force_login(viewer)
    make_run(drift_rows(120) + drift_rows(60, DriftKind.ORPHAN_RECORD))
    html = client.get(LATEST, {"kind": "missing_record", "page": "3"}).content.decode()
    assert "page 3 of 3" in html and "101\u2013120 shown" in html
    assert html.count('class="cf-drift cf-drift-missing_record"') == 20
    assert 'data-target="stack:1100"' in html and 'data-target="stack:1099"' not in html
    assert 'data-target="record:rec-0"' in html  # the other kind: its first page
    assert "page 1 of 2" in html


@pytest.mark.parametrize("page", ["0", "99", "x"])
def test_an_odd_page_number_shows_a_page_anyway(client, viewer, page):
    client.force_login(viewer)
    make_run(drift_rows(60))
    response = client.get(LATEST, {"kind": "missing_record", "page": page})
    assert response.status_code == 200
    assert 'class="cf-drift cf-drift-missing_record"' in response.content.decode()


def test_report_groups_reads_the_rows_in_the_database():
    run = make_run(drift_rows(3, DriftKind.SERVICE_STATUS) + drift_rows(70))
    groups = reconcile.report_groups(run, kind="missing_record", page=2, per_page=50)
    assert [(g.kind, g.count, len(g.rows)) for g in groups] == [
        ("service_status", 3, 3),
        ("missing_record", 70, 20),
    ]
    assert groups[1].rows[0]["stack_id"] == 1050
    assert groups[1].rows[0]["repair_buttons"][0]["kind"] == Repair.PUSH_RECORD
    assert groups[1].bulk_repairs == [
        {
            "kind": Repair.PUSH_RECORD,
            "label": Repair.PUSH_RECORD.label,
            "destructive": False,
            "count": 70,
        }
    ]
    assert reconcile.report_groups(None) == []
    assert reconcile.report_groups(make_run([])) == []


# --- bulk repair per kind -------------------------------------------------------------------------


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    calls: list[tuple] = []
    monkeypatch.setattr(
        "stacks.admin.reconcile.enqueue", lambda func, *args: calls.append((func, *args))
    )
    return calls


def bulk_url(run: ReconcileRun) -> str:
    return reverse("admin:stacks_reconcile_repair_kind", args=[run.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_operators_see_a_bulk_repair_per_kind(client, operator):
    client.force_login(operator)
    run = make_run(drift_rows(75) + drift_rows(3, DriftKind.ORPHAN_RECORD))
    html = client.get(LATEST).content.decode()
    assert html.count(f'action="{bulk_url(run)}"') == 2
    assert "Write cfadmin&#x27;s record to PocketBase: all 75</button>" in html
    assert "I am sure, all 3" in html  # delete_record is destructive


def test_viewers_see_no_bulk_forms(client, viewer):
    client.force_login(viewer)
    run = make_run(drift_rows(75))
    html = client.get(LATEST).content.decode()
    assert f'action="{bulk_url(run)}"' not in html
    assert "Write cfadmin&#x27;s record to PocketBase (75)" in html


def test_a_bulk_repair_is_queued_once_and_audited(client, operator, queued):
    client.force_login(operator)
    run = make_run(drift_rows(75))
    data = {"drift_kind": "missing_record", "repair": "push_record"}
    response = client.post(bulk_url(run), data)
    assert response.status_code == 302 and response["Location"] == LATEST
    assert queued == [
        (reconcile.BULK_REPAIR_TASK, run.pk, "missing_record", "push_record", operator.pk)
    ]
    assert messages_of(response) == [
        "Write cfadmin's record to PocketBase queued for 75 rows; the report refreshes when "
        "they are done."
    ]
    [event] = AuditEvent.objects.filter(changes__job="repair_drift_kind:missing_record:push_record")
    assert event.actor == operator
    assert "75" in event.message and "PocketBase record missing" in event.message
    # A second click while the first is queued queues nothing more.
    response = client.post(bulk_url(run), data)
    assert len(queued) == 1
    assert "already queued" in messages_of(response)[-1]


@pytest.mark.parametrize("persona", ["viewer", "support"])
def test_read_only_roles_cannot_bulk_repair(request, client, queued, persona):
    client.force_login(request.getfixturevalue(persona))
    run = make_run(drift_rows(10))
    response = client.post(bulk_url(run), {"drift_kind": "missing_record", "repair": "push_record"})
    assert response.status_code == 403
    assert queued == []
    assert not AuditEvent.objects.filter(changes__job__startswith="repair_drift_kind").exists()


def test_a_destructive_bulk_repair_needs_confirmation(client, operator, queued):
    client.force_login(operator)
    run = make_run(drift_rows(4, DriftKind.ORPHAN_RECORD))
    data = {"drift_kind": "orphan_record", "repair": "delete_record"}
    response = client.post(bulk_url(run), data)
    assert queued == []
    assert "tick “I am sure” first" in messages_of(response)[0]
    client.post(bulk_url(run), {**data, "confirm": "yes"})
    assert queued == [
        (reconcile.BULK_REPAIR_TASK, run.pk, "orphan_record", "delete_record", operator.pk)
    ]


@pytest.mark.parametrize(
    ("drift_kind", "repair"),
    [("missing_record", "delete_record"), ("orphan_record", "push_record"), ("x", "nope")],
)
def test_a_bulk_repair_not_in_the_report_is_refused(client, operator, queued, drift_kind, repair):
    client.force_login(operator)
    run = make_run(drift_rows(4))
    response = client.post(bulk_url(run), {"drift_kind": drift_kind, "repair": repair})
    assert queued == []
    assert "not in this report" in messages_of(response)[0]


def test_a_bulk_repair_from_an_older_report_is_refused(client, operator, queued):
    client.force_login(operator)
    old = make_run(drift_rows(4))
    make_run(drift_rows(2))
    response = client.post(bulk_url(old), {"drift_kind": "missing_record", "repair": "push_record"})
    assert queued == []
    assert "A newer report exists" in messages_of(response)[0]


def test_a_bulk_repair_of_a_run_that_does_not_exist_is_refused(client, operator, queued):
    client.force_login(operator)
    make_run(drift_rows(4))
    url = reverse("admin:stacks_reconcile_repair_kind", args=[9999])
    response = client.post(url, {"drift_kind": "missing_record", "repair": "push_record"})
    assert queued == []
    assert "not in this report" in messages_of(response)[0]
    url = reverse("admin:stacks_reconcile_repair_kind", args=["x"])
    assert client.post(url, {"drift_kind": "missing_record"}).status_code == 404


def test_the_bulk_task_repairs_each_row_audits_and_reports(monkeypatch, operator):
    run = make_run(drift_rows(4) + drift_rows(2, DriftKind.ORPHAN_RECORD))
    done: list[tuple[str, str]] = []

    def fake_repair(kind: str, target: str, *, actor: Any) -> str:
        if target == "stack:1002":
            raise reconcile.RepairRefused("already fine")
        done.append((kind, target))
        return "ok"

    notes: list[str] = []
    monkeypatch.setattr("stacks.reconcile.bulk.repair", fake_repair)
    monkeypatch.setattr(
        "stacks.reconcile.bulk.run_reconcile",
        lambda *, actor, note: notes.append(note) or make_run([]),
    )
    summary = tasks.repair_drift_kind_task(run.pk, "missing_record", "push_record", operator.pk)
    assert done == [("push_record", f"stack:{n}") for n in (1000, 1001, 1003)]
    assert summary.startswith("3 of 4 repaired; 1 not: stack:1002: already fine")
    assert notes == [
        "Write cfadmin's record to PocketBase for every “PocketBase record missing” row: " + summary
    ]
    [event] = AuditEvent.objects.filter(
        changes__job="repair_drift_kind:missing_record:push_record:done"
    )
    assert event.actor == operator
    assert event.changes["repaired"] == 3 and event.changes["not_repaired"] == 1


# --- search --------------------------------------------------------------------------------------


@pytest.fixture
def searchable(make_stack) -> dict[str, Stack]:
    return {
        "main": make_stack(
            "customer-123",
            "customer-123-main",
            domains={"webui": "demo.customer123.com"},
            coolify_service_uuid="x8k2mq0vz1",
            coolify_project_uuid="p0proj0123",
            pocketbase_id="pbrec0000000001",
        ),
        "other": make_stack(
            "acme",
            "web",
            domains={"webui": "www.acme-shop.net", "api": "api.acme-shop.net"},
            coolify_service_uuid="zz99yy88",
        ),
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("x8k2mq0vz1", ["customer-123-main"]),  # Coolify service uuid
        ("p0proj0123", ["customer-123-main"]),  # Coolify project uuid
        ("pbrec0000000001", ["customer-123-main"]),  # PocketBase record id
        ("customer-1", ["customer-123-main"]),  # tenant slug prefix
        ("acme", ["web"]),  # tenant slug
        ("demo.cust", ["customer-123-main"]),  # domain prefix
        ("www.acme", ["web"]),  # domain prefix
        ("api.acme-shop.net", ["web"]),  # whole domain: one row though two domains match "acme"
        ("ACME", ["web"]),  # case does not matter
        ("nothing-like-it", []),
    ],
)
def test_the_stack_search_finds(client, superuser, searchable, term, expected):
    client.force_login(superuser)
    response = client.get(reverse("admin:stacks_stack_changelist"), {"q": term})
    names = sorted(stack.stack_name for stack in response.context["cl"].result_list)
    assert names == expected


def test_the_stack_search_finds_by_id(client, superuser, searchable):
    client.force_login(superuser)
    pk = searchable["other"].pk
    response = client.get(reverse("admin:stacks_stack_changelist"), {"q": str(pk)})
    assert searchable["other"] in response.context["cl"].result_list


def test_the_stack_search_needs_no_join_or_distinct(client, superuser, searchable):
    client.force_login(superuser)
    client.get(reverse("admin:stacks_stack_changelist"), {"q": "acme"})
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("admin:stacks_stack_changelist"), {"q": "acme"})
    assert [s.stack_name for s in response.context["cl"].result_list] == ["web"]
    listed = [q["sql"] for q in captured if 'FROM "stacks_stack"' in q["sql"]]
    assert listed and all("DISTINCT" not in sql for sql in listed[:2])
    assert all('JOIN "stacks_stackdomain"' not in sql for sql in listed)


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("customer-1", ["customer-123"]),
        ("x8k2mq0vz1", ["customer-123"]),  # a stack's uuid finds its tenant
        ("www.acme", ["acme"]),  # a stack's domain too
        ("Customer acme", ["acme"]),  # every word must match: name prefix and slug
    ],
)
def test_the_tenant_search_finds(client, superuser, searchable, term, expected):
    client.force_login(superuser)
    response = client.get(reverse("admin:tenants_tenant_changelist"), {"q": term})
    assert sorted(t.slug for t in response.context["cl"].result_list) == expected


def test_the_operation_search_finds_by_stack(client, superuser, searchable):
    client.force_login(superuser)
    add_operations(searchable["other"], 2)
    add_operations(searchable["main"], 1)
    response = client.get(reverse("admin:stacks_operation_changelist"), {"q": "www.acme"})
    assert {op.stack_id for op in response.context["cl"].result_list} == {searchable["other"].pk}
    Operation.objects.filter(stack=searchable["main"]).update(requested_by_repr="cli:ops")
    response = client.get(reverse("admin:stacks_operation_changelist"), {"q": "cli:"})
    assert {op.stack_id for op in response.context["cl"].result_list} == {searchable["main"].pk}
    op = Operation.objects.filter(stack=searchable["other"]).first()
    response = client.get(reverse("admin:stacks_operation_changelist"), {"q": str(op.pk)})
    assert op in response.context["cl"].result_list


# --- counts --------------------------------------------------------------------------------------


def test_count_rows_is_exact_where_counting_is_cheap(make_stack):
    assert count_rows(Stack.objects.filter(pk__in=[])) == (0, False)  # nothing to plan
    add_stacks(make_stack, 0, 4)
    assert count_rows(Stack.objects.all()) == (4, False)
    assert count_rows(Stack.objects.filter(status=StackStatus.ERROR)) == (1, False)
    paginator = EstimatedCountPaginator(Stack.objects.order_by("pk"), 2)
    assert paginator.count == 4 and paginator.num_pages == 2 and not paginator.estimated


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner's estimate")
def test_count_rows_estimates_past_the_cap_reading_at_most_the_cap(make_stack):
    add_stacks(make_stack, 0, 30)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE stacks_stack")
    with CaptureQueriesContext(connection) as captured:
        assert count_rows(Stack.objects.all(), estimate_above=10) == (30, True)  # the planner's
    [count] = [q["sql"] for q in captured if "COUNT(" in q["sql"]]
    assert "LIMIT 11" in count  # never more rows read than the cap
    assert count_rows(Stack.objects.filter(status=StackStatus.ERROR), estimate_above=10) == (
        8,
        False,
    )


def test_a_bulk_repair_writes_every_missing_record_for_real(monkeypatch, make_stack, operator):
    """Through the real repairs, against stub clients: three stacks PocketBase lost, one
    request, one job, each record written and audited, and a new report in sync."""
    from tests.fakes import FakeCoolify, FakePocketBase

    coolify, pocketbase = FakeCoolify(), FakePocketBase()
    for module in ("stacks.reconcile.runs", "stacks.reconcile.repairs"):
        monkeypatch.setattr(f"{module}.get_coolify", lambda: coolify)
        monkeypatch.setattr(f"{module}.get_pocketbase", lambda: pocketbase)
    for n in range(3):
        make_stack("customer-1", f"customer-1-s{n}", status=StackStatus.STOPPED)
    run = reconcile.run_reconcile(actor=operator)
    assert {row["kind"] for row in run.drift} == {DriftKind.MISSING_RECORD}
    assert len(run.drift) == 3
    calls: list[tuple] = []
    count = reconcile.request_bulk_repair(
        run,
        DriftKind.MISSING_RECORD,
        Repair.PUSH_RECORD,
        actor=operator,
        confirmed=False,
        enqueue=lambda func, *args: calls.append((func, *args)),
    )
    assert count == 3 and len(calls) == 1
    func, *args = calls[0]
    assert func == reconcile.BULK_REPAIR_TASK
    summary = tasks.repair_drift_kind_task(*args)
    assert summary == "3 of 3 repaired"
    latest = ReconcileRun.latest_finished()
    assert latest.drift == []
    assert latest.note.endswith(": 3 of 3 repaired")
    written = AuditEvent.objects.filter(message__startswith="Reconcile: Wrote the PocketBase")
    assert written.count() == 3
    assert all(event.actor == operator for event in written)


# --- the stored drift index: counts without the list, only the rows shown fetched ---------------


def test_the_drift_index_counts_kinds_repairs_and_spans():
    rows = drift_rows(2) + drift_rows(1, DriftKind.ORPHAN_RECORD) + drift_rows(1) + ["odd"]
    assert stored_drift.count_rows(rows) == {
        "missing_record": [3, {"push_record": 3}, [[0, 1], [3, 3]], [rows[0], rows[1], rows[3]]],
        "orphan_record": [1, {"delete_record": 1}, [[2, 2]], [rows[2]]],
    }
    assert stored_drift.positions([[0, 1], [3, 3], [7, 9]], 1, 3) == [1, 3, 7]
    assert stored_drift.positions([[0, 1], [3, 3], [7, 9]], 3, 50) == [7, 8, 9]
    assert stored_drift.positions([[0, 1]], 5, 50) == []


def test_a_report_pages_interleaved_kinds_in_stored_order():
    rows = []
    for n in range(60):  # kinds alternate: many spans, every page crosses several
        rows += [drift_rows(60)[n], drift_rows(1, DriftKind.ORPHAN_RECORD)[0]]
    run = make_run(rows)
    groups = reconcile.report_groups(run, kind="missing_record", page=2, per_page=25)
    shown = {g.kind: [row["target"] for row in g.rows] for g in groups}
    assert shown["missing_record"] == [f"stack:{1000 + n}" for n in range(25, 50)]
    assert len(shown["orphan_record"]) == 25
    assert [(g.kind, g.count) for g in groups] == [("missing_record", 60), ("orphan_record", 60)]
    # past the first 50 (the index's stored head): extracted by position in the database
    groups = reconcile.report_groups(run, kind="orphan_record", page=3, per_page=25)
    assert [len(g.rows) for g in groups] == [25, 10]
    assert [row["target"] for row in groups[1].rows] == ["record:rec-0"] * 10
    assert [row["target"] for row in groups[0].rows] == [f"stack:{1000 + n}" for n in range(25)]


def test_a_report_reads_the_index_not_the_drift_list(client, viewer):
    """The index is built once for a run stored without it; then no query selects the list
    (only the elements shown are extracted in the database)."""
    client.force_login(viewer)
    run = make_run(drift_rows(120) + drift_rows(3, DriftKind.SERVICE_STATUS))
    assert run.drift_counts is None
    client.get(LATEST)
    run.refresh_from_db()
    assert run.drift_counts["missing_record"][:3] == [120, {"push_record": 120}, [[0, 119]]]
    assert len(run.drift_counts["missing_record"][3]) == reconcile.ROWS_PER_PAGE
    with CaptureQueriesContext(connection) as captured:
        html = client.get(reverse("admin:stacks_reconcilerun_change", args=[run.pk])).content
    assert html.decode().count('class="cf-drift cf-drift-missing_record"') == 50
    assert all('"stacks_reconcilerun"."drift"' not in q["sql"] for q in captured)


def test_the_operation_filters_have_indexes_in_the_lists_order():
    """SQLite walks a filter's index only when it holds the whole order (else it walks the
    order's index through every row, for a status no row has)."""
    order = Operation._meta.ordering
    fields = [index.fields for index in Operation._meta.indexes]
    assert ["status", *order] in fields and ["kind", *order] in fields


def test_the_operation_status_filter_makes_the_same_queries(client, superuser, make_stack):
    client.force_login(superuser)
    url = reverse("admin:stacks_operation_changelist") + "?status__exact=queued"
    add_stacks(make_stack, 0, 3)
    add_operations(Stack.objects.first(), 3)
    few, _ = queries(client, url)
    for stack in Stack.objects.all():
        add_operations(stack, 20)
    many, html = queries(client, url)
    assert many == few <= LIST_BUDGET
    assert "0 operations" in html


def test_a_finished_comparison_stores_its_drift_index(monkeypatch):
    found = [
        Drift(DriftKind.MISSING_RECORD, "customer-1", f"s{n}", "m", [Repair.PUSH_RECORD])
        for n in range(3)
    ]
    monkeypatch.setattr("stacks.reconcile.runs.find_drift", lambda services, records: (found, 3))

    class Remote:
        def list_services(self) -> list:
            return []

        def list_records(self) -> list:
            return []

    run = reconcile.run_reconcile(actor="tester", coolify=Remote(), pocketbase=Remote())
    run.refresh_from_db()
    assert run.drift_counts == stored_drift.count_rows(run.drift)
    assert run.drift_counts["missing_record"][:3] == [3, {"push_record": 3}, [[0, 2]]]
