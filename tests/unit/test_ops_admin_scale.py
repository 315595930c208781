"""Issue 13, every page bounded: the audit trail and the ops admin pages (checklist runs,
incidents, escalation contacts, procedures, outages) make the same number of queries, at most
12, with few rows and with many, and their lists never load JSON they do not show.

Each check warms the page once (caches of content types and sessions), counts its queries with
the small set, grows the data, and counts again. No timings: the counts are the behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cfadmin.models import AuditAction, AuditEvent
from ops import checklists, incidents
from ops.models import (
    ChecklistItem,
    ChecklistRun,
    EscalationContact,
    Incident,
    IncidentEvent,
    IncidentEventKind,
    Outage,
    Procedure,
    ProcedureCategory,
    ProcedureStep,
)
from ops.procedures import POST_DEPLOY
from stacks.models import Stack

SMALL, LARGE = 5, 60
MAX_QUERIES = 12
AUDIT = reverse("admin:cfadmin_auditevent_changelist")
BIG_JSON = {"output": "x" * 2000, "lines": list(range(200))}

pytestmark = pytest.mark.django_db


def count_queries(client, url: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured), [query["sql"] for query in captured.captured_queries]


def assert_bounded(client, url: str | Callable[[], str], grow: Callable[[], None]) -> list[str]:
    """Same query count before and after `grow()`, and at most MAX_QUERIES; the large page's SQL."""
    address = url if callable(url) else (lambda: url)
    client.get(address())  # warm-up
    small, _ = count_queries(client, address())
    grow()
    large, sql = count_queries(client, address())
    assert small == large <= MAX_QUERIES, (address(), small, large, "\n".join(sql))
    return sql


def never_selects(sql: list[str], column: str) -> None:
    assert not [q for q in sql if column in q and q.lstrip().upper().startswith("SELECT")], sql


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


# --- the audit trail --------------------------------------------------------------------------


def add_events(count: int, staff: list[User]) -> None:
    types = [ContentType.objects.get_for_model(model) for model in (Stack, Incident, User)]
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        AuditEvent(
            occurred_at=now - timedelta(hours=i),
            actor=staff[i % len(staff)] if i % 3 else None,
            actor_repr=staff[i % len(staff)].username if i % 3 else "cli:deployer",
            action=[AuditAction.LOGIN, AuditAction.OPERATION, AuditAction.UPDATE][i % 3],
            target_type=types[i % len(types)],
            target_id=str(i),
            target_repr=f"thing {i}",
            tenant_slug=f"customer-{i % 4}",
            stack_name=f"customer-{i % 4}-main",
            message=f"event {i}",
            changes=BIG_JSON,
        )
        for i in range(count)
    )
    # auto_now_add overrides occurred_at on create: spread them over days as a trail is.
    for i, event in enumerate(AuditEvent.objects.order_by("id")):
        AuditEvent.objects.filter(pk=event.pk).update(occurred_at=now - timedelta(hours=i))


@pytest.fixture
def staff(db) -> list[User]:
    return [User.objects.create_user(f"staff{i}", is_staff=True) for i in range(3)]


def audit_pages(staff: list[User]) -> list[str]:
    stack_type = ContentType.objects.get_for_model(Stack)
    return [
        "",
        "?action__exact=login",
        "?actor=cli%3Adeployer",
        f"?actor__id__exact={staff[0].pk}",
        f"?target_type__id__exact={stack_type.pk}",
        "?occurred_at__within=24h",
        "?occurred_at__within=30d",
        "?occurred_at__gte=2020-01-01&occurred_at__lte=2099-12-31",
        "?tenant=customer-1",
        "?stack=customer-2-main",
        "?q=thing",
        "?q=event&action__exact=operation&occurred_at__within=7d",
    ]


@pytest.mark.parametrize("page", range(12))
def test_the_audit_trail_makes_the_same_queries_whatever_its_size(admin_client, staff, page):
    query = audit_pages(staff)[page]
    add_events(SMALL, staff)
    sql = assert_bounded(admin_client, AUDIT + query, lambda: add_events(LARGE, staff))
    never_selects(sql, '"changes"')
    # No date hierarchy, no "related only" choices: nothing reads the trail for distinct values.
    assert not [q for q in sql if "DISTINCT" in q.upper() and "cfadmin_auditevent" in q], sql


def test_the_audit_trail_counts_once(admin_client, staff):
    add_events(SMALL, staff)
    _, sql = count_queries(admin_client, AUDIT)
    assert len([q for q in sql if "COUNT(" in q.upper() and "cfadmin_auditevent" in q]) == 1


def test_past_the_cap_postgresql_estimates_the_count(admin_client, staff, monkeypatch):
    monkeypatch.setattr("cfadmin.paginators.ESTIMATE_ABOVE", 10)
    add_events(20, staff)
    response = admin_client.get(AUDIT)
    changelist = response.context["cl"]
    if connection.vendor == "postgresql":
        assert changelist.paginator.estimated and changelist.result_count >= 11
        assert "about " in response.content.decode()
    else:  # SQLite counts exactly
        assert not changelist.paginator.estimated
        assert changelist.result_count == AuditEvent.objects.count()
    # Under the cap, exact everywhere.
    filtered = admin_client.get(AUDIT + "?actor=cli%3Adeployer").context["cl"]
    assert not filtered.paginator.estimated
    assert filtered.result_count == AuditEvent.objects.filter(actor_repr="cli:deployer").count()


def test_the_audit_trail_filters_by_period_actor_and_target_type(admin_client, staff):
    add_events(LARGE, staff)  # one an hour, the newest now (with the login of force_login)
    total = AuditEvent.objects.count()

    def shown(query: str) -> list[AuditEvent]:
        return list(admin_client.get(AUDIT + query).context["cl"].result_list)

    assert len(shown("?occurred_at__within=24h")) == 24
    assert len(shown("?occurred_at__within=7d")) == total  # 61 hours
    day = timezone.localdate(timezone.now() - timedelta(days=1))
    by_day = shown(f"?occurred_at__gte={day}&occurred_at__lte={day}")
    assert by_day and all(timezone.localdate(e.occurred_at) == day for e in by_day)
    # An unreadable date is ignored and said so, not an error page.
    response = admin_client.get(AUDIT + "?occurred_at__gte=yesterday")
    assert response.status_code == 200 and len(response.context["cl"].result_list) == total
    assert "Not a date: yesterday" in response.content.decode()

    by_user = shown(f"?actor__id__exact={staff[1].pk}")
    assert by_user and {e.actor_id for e in by_user} == {staff[1].pk}
    assert {e.actor_repr for e in shown("?actor=cli%3Adeployer")} == {"cli:deployer"}
    stack_type = ContentType.objects.get_for_model(Stack)
    assert {e.target_type_id for e in shown(f"?target_type__id__exact={stack_type.pk}")} == {
        stack_type.pk
    }

    sidebar = admin_client.get(AUDIT).content.decode()
    for name in ("staff0", "staff1", "staff2", "Last 24 hours", "Last 30 days", "Filter dates"):
        assert name in sidebar
    # Only the types the trail mentions are offered.
    assert f"target_type__id__exact={stack_type.pk}" in sidebar
    tenant_type = ContentType.objects.get(app_label="tenants", model="tenant")
    assert f"target_type__id__exact={tenant_type.pk}" not in sidebar


def test_the_audit_event_page_still_shows_the_changes(admin_client, staff):
    add_events(1, staff)
    event = AuditEvent.objects.get(target_repr="thing 0")
    page = admin_client.get(reverse("admin:cfadmin_auditevent_change", args=[event.pk]))
    assert page.status_code == 200 and "x" * 200 in page.content.decode()


# --- checklist runs ---------------------------------------------------------------------------


def add_runs(count: int, make_stack, superuser) -> None:
    procedure = Procedure.objects.get(slug=POST_DEPLOY, active=True)
    start = ChecklistRun.objects.count()
    for i in range(start, start + count):
        stack = make_stack(f"tenant-{i}", f"tenant-{i}-main")
        run = checklists.start_run(procedure, actor=superuser, stack=stack)
        ChecklistItem.objects.filter(run=run).update(evidence=BIG_JSON)
        first = run.items.order_by("step__position").first()
        ChecklistItem.objects.filter(pk=first.pk).update(state="done")


def test_the_checklist_runs_list_is_bounded(admin_client, make_stack, superuser):
    add_runs(SMALL, make_stack, superuser)
    url = reverse("admin:ops_checklistrun_changelist")
    sql = assert_bounded(admin_client, url, lambda: add_runs(LARGE, make_stack, superuser))
    never_selects(sql, '"evidence"')
    page = admin_client.get(url)
    rows = list(page.context["cl"].result_list)
    assert len(rows) == SMALL + LARGE
    assert {run.progress for run in rows} == {(1, 5)}
    assert "1/5" in page.content.decode()


def test_a_checklist_run_page_is_bounded(admin_client, make_stack, superuser):
    add_runs(SMALL, make_stack, superuser)
    run = ChecklistRun.objects.order_by("id").first()
    url = reverse("admin:ops_checklistrun_change", args=[run.pk])
    assert_bounded(admin_client, url, lambda: add_runs(LARGE, make_stack, superuser))
    assert "1 of 5 steps settled" in admin_client.get(url).content.decode()


# --- incidents --------------------------------------------------------------------------------


def add_incidents(count: int, make_stack, superuser) -> None:
    escalation = EscalationContact.objects.order_by("priority").first()
    start = Incident.objects.count()
    for i in range(start, start + count):
        incident = Incident(title=f"incident {i}", escalation=escalation, owner=superuser)
        incidents.prepare_new(incident, actor=superuser)
        incident.save()
        stacks = [make_stack(f"inc-{i}-{n}", f"inc-{i}-{n}-main") for n in range(3)]
        incident.stacks.set(stacks)
        incident.tenants.set([stack.tenant for stack in stacks])


def test_the_incident_list_is_bounded(admin_client, make_stack, superuser):
    add_incidents(SMALL, make_stack, superuser)
    url = reverse("admin:ops_incident_changelist")
    assert_bounded(admin_client, url, lambda: add_incidents(LARGE, make_stack, superuser))
    assert len(admin_client.get(url).context["cl"].result_list) == SMALL + LARGE


def test_an_incident_page_with_many_stacks_runs_and_events_is_bounded(
    admin_client, make_stack, superuser
):
    escalation = EscalationContact.objects.order_by("priority").first()
    incident = Incident(title="Many stacks down", owner=superuser, escalation=escalation)
    incidents.prepare_new(incident, actor=superuser)
    incident.save()
    incident.outages.add(Outage.objects.create(check_name="coolify", started_at=timezone.now()))
    procedure = Procedure.objects.get(slug=POST_DEPLOY, active=True)

    def grow(count: int) -> Callable[[], None]:
        def add() -> None:
            start = incident.stacks.count()
            for i in range(start, start + count):
                stack = make_stack(f"down-{i}", f"down-{i}-main")
                incident.stacks.add(stack)
                incident.tenants.add(stack.tenant)
                run = checklists.start_run(procedure, actor=superuser, stack=stack)
                ChecklistRun.objects.filter(pk=run.pk).update(incident=incident)
                ChecklistItem.objects.filter(run=run).update(evidence=BIG_JSON)
                IncidentEvent.objects.create(
                    incident=incident,
                    kind=IncidentEventKind.NOTE,
                    message=f"note {i}",
                    actor_repr="x",
                )

        return add

    grow(SMALL)()
    url = reverse("admin:ops_incident_change", args=[incident.pk])
    sql = assert_bounded(admin_client, url, grow(LARGE))
    never_selects(sql, '"evidence"')
    page = admin_client.get(url).content.decode()
    assert "down-64/down-64-main" in page  # the stacks field shows every linked stack
    assert "note 64" in page  # the latest events are shown
    assert "note 0<" not in page  # … but not the whole timeline
    assert "?timeline=all" in page
    everything = admin_client.get(url + "?timeline=all").content.decode()
    assert "note 0<" in everything
    runs = reverse("admin:ops_checklistrun_changelist") + f"?incident__id__exact={incident.pk}"
    assert runs.replace("&", "&amp;") in page or runs in page
    assert len(admin_client.get(runs).context["cl"].result_list) == SMALL + LARGE


# --- escalation contacts, procedures, outages -------------------------------------------------


def add_contacts(count: int) -> None:
    start = EscalationContact.objects.count()
    EscalationContact.objects.bulk_create(
        EscalationContact(issue_type=f"Issue {i}", team=f"Team {i}", response_minutes=30 + i)
        for i in range(start, start + count)
    )


def test_the_contacts_list_is_bounded(admin_client):
    add_contacts(SMALL)
    url = reverse("admin:ops_escalationcontact_changelist")
    assert_bounded(admin_client, url, lambda: add_contacts(LARGE))


def add_procedures(count: int, steps: int = 4) -> None:
    start = Procedure.objects.count()
    for i in range(start, start + count):
        procedure = Procedure.objects.create(
            slug=f"extra-{i}", title=f"Extra {i}", category=ProcedureCategory.MAINTENANCE
        )
        ProcedureStep.objects.bulk_create(
            ProcedureStep(procedure=procedure, position=n, text=f"step {n}") for n in range(steps)
        )


def test_the_procedures_list_is_bounded(admin_client):
    add_procedures(SMALL)
    url = reverse("admin:ops_procedure_changelist")
    assert_bounded(admin_client, url, lambda: add_procedures(LARGE))
    page = admin_client.get(url)
    counts = {p.slug: p.step_total for p in page.context["cl"].result_list}
    assert {counts[p.slug] for p in Procedure.objects.filter(slug__startswith="extra-")} == {4}


def test_a_procedure_page_is_bounded(admin_client):
    add_procedures(1, steps=SMALL)
    procedure = Procedure.objects.get(slug__startswith="extra-")
    url = reverse("admin:ops_procedure_change", args=[procedure.pk])

    def more_steps() -> None:
        ProcedureStep.objects.bulk_create(
            ProcedureStep(procedure=procedure, position=n, text=f"step {n}")
            for n in range(SMALL, SMALL + LARGE)
        )

    assert_bounded(admin_client, url, more_steps)


def add_outages(count: int) -> None:
    now = timezone.now()
    start = Outage.objects.count()
    for i in range(start, start + count):
        outage = Outage.objects.create(
            check_name=f"check-{i % 3}",
            started_at=now - timedelta(days=i + 1),
            ended_at=now - timedelta(days=i),
        )
        incident = Incident.objects.create(title=f"outage {i}")
        incident.outages.add(outage)


def test_the_outages_list_is_bounded(admin_client):
    add_outages(SMALL)
    url = reverse("admin:ops_outage_changelist")
    assert_bounded(admin_client, url, lambda: add_outages(LARGE))


# --- search (through indexes, no join, no DISTINCT) -------------------------------------------


def shown_rows(client, url: str) -> list:
    response = client.get(url)
    assert response.status_code == 200, url
    return list(response.context["cl"].result_list)


def no_substring_scan(sql: list[str], term: str, allowed: tuple[str, ...] = ()) -> None:
    """An indexed search: the term is matched exactly or by its beginning, never '%term%' —
    except in the `allowed` columns of small tables (a procedure's or incident's title)."""
    for query in sql:
        for match in re.finditer(re.escape(f"%{term}%"), query, re.IGNORECASE):
            column = re.findall(r'"(\w+)"', query[: match.start()])[-1]
            assert column in allowed, (column, query)


# Each term finds events in the small trail as in the large one: a page with events makes one
# more query than an empty page (their targets' links, cfadmin.audit_links), whatever its size.
@pytest.mark.parametrize(
    "search", ["staff1", "cli:deployer", "customer-1", "customer-2-main", "thing 3"]
)
def test_the_audit_search_makes_the_same_queries_whatever_its_size(admin_client, staff, search):
    add_events(SMALL, staff)
    url = f"{AUDIT}?q={search}"
    sql = assert_bounded(admin_client, url, lambda: add_events(LARGE, staff))
    for term in search.split():
        no_substring_scan(sql, term)
    assert not [q for q in sql if "DISTINCT" in q.upper() and "cfadmin_auditevent" in q], sql


def test_the_audit_search_finds_by_actor_tenant_stack_target_address_and_id(admin_client, staff):
    add_events(LARGE, staff)
    AuditEvent.objects.filter(target_repr="thing 9").update(address="10.0.0.9")

    def search(text: str) -> list[AuditEvent]:
        return shown_rows(admin_client, f"{AUDIT}?q={text}")

    by_actor = search("staff1")
    assert by_actor and {e.actor_repr for e in by_actor} == {"staff1"}
    assert {e.actor_repr for e in search("staff")} == {"staff1", "staff2"}  # add_events' actors
    assert {e.actor_repr for e in search("cli:")} == {"cli:deployer"}
    by_tenant = search("customer-1")
    assert {e.tenant_slug for e in by_tenant} == {"customer-1"}
    assert len(by_tenant) == AuditEvent.objects.filter(tenant_slug="customer-1").count()
    assert {e.stack_name for e in search("CUSTOMER-2-main")} == {"customer-2-main"}
    assert [e.target_repr for e in search("thing 7")] == ["thing 7"]  # words: all must match
    assert [e.target_repr for e in search("10.0.0.9")] == ["thing 9"]
    event = AuditEvent.objects.get(target_repr="thing 12")
    assert event in search(str(event.pk))
    # Nothing begins with it: any part of a column, then (a read of the whole trail).
    assert {e.actor_repr for e in search("deployer")} == {"cli:deployer"}
    assert {e.message for e in search("vent 42")} == {"event 42"}
    assert search("no-such-thing") == []


def test_the_audit_search_says_what_it_finds(admin_client, staff):
    page = admin_client.get(f"{AUDIT}?q=x").content.decode()
    assert "beginning of an actor, target, tenant slug or stack name" in page


def test_the_incident_search_finds_by_stack_tenant_title_and_id(
    admin_client, make_stack, superuser
):
    add_incidents(SMALL, make_stack, superuser)
    url = reverse("admin:ops_incident_changelist")

    def search(text: str) -> list[str]:
        return sorted(incident.title for incident in shown_rows(admin_client, f"{url}?q={text}"))

    assert search("inc-3-1-main") == ["incident 3"]
    assert search("inc-3-1") == ["incident 3"]  # the stack name's or tenant slug's beginning
    assert search("inc-4-") == ["incident 4"]
    first = Incident.objects.get(title="incident 2")
    assert "incident 2" in search(str(first.pk))
    assert search("incident") == [f"incident {i}" for i in range(SMALL)]
    assert search("-1-ma") == [f"incident {i}" for i in range(SMALL)]  # any part, at last
    assert search("no-such-thing") == []


@pytest.mark.parametrize("search", ["inc-3-1-main", "inc-2", "incident"])
def test_the_incident_search_makes_the_same_queries_whatever_its_size(
    admin_client, make_stack, superuser, search
):
    add_incidents(SMALL, make_stack, superuser)
    url = reverse("admin:ops_incident_changelist") + f"?q={search}"
    sql = assert_bounded(admin_client, url, lambda: add_incidents(LARGE, make_stack, superuser))
    assert not [q for q in sql if 'DISTINCT "ops_incident"' in q], sql
    no_substring_scan(sql, search, allowed=("title",))


def test_the_checklist_run_search_finds_by_stack_tenant_procedure_and_id(
    admin_client, make_stack, superuser
):
    add_runs(SMALL, make_stack, superuser)
    url = reverse("admin:ops_checklistrun_changelist")

    def search(text: str) -> list[ChecklistRun]:
        return shown_rows(admin_client, f"{url}?q={text}")

    assert [run.stack.stack_name for run in search("tenant-3-main")] == ["tenant-3-main"]
    assert [run.stack.stack_name for run in search("tenant-2")] == ["tenant-2-main"]
    run = ChecklistRun.objects.order_by("id").last()
    assert run in search(str(run.pk))
    title_word = Procedure.objects.get(slug=POST_DEPLOY, active=True).title.split()[0]
    assert len(search(title_word)) == SMALL
    ChecklistRun.objects.filter(pk=run.pk).update(note="restarted by hand")
    assert search("by hand") == [run]  # the note: any part, when nothing else is found
    assert search("no-such-thing") == []


@pytest.mark.parametrize("search", ["tenant-3-main", "tenant-2"])
def test_the_checklist_run_search_makes_the_same_queries_whatever_its_size(
    admin_client, make_stack, superuser, search
):
    add_runs(SMALL, make_stack, superuser)
    url = reverse("admin:ops_checklistrun_changelist") + f"?q={search}"
    sql = assert_bounded(admin_client, url, lambda: add_runs(LARGE, make_stack, superuser))
    never_selects(sql, '"evidence"')
    assert not [q for q in sql if 'DISTINCT "ops_checklistrun"' in q], sql
    no_substring_scan(sql, search, allowed=("title",))
