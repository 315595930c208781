"""The audit trail links each event to what it is about (cfadmin.audit_links) and makes its
tenant and stack filters; incident and checklist events carry their tenant and stack
(ops.incidents.audit_scope, ops.checklists.audit_scope), so filtering by tenant finds them."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from cfadmin import audit
from cfadmin.models import AuditAction, AuditEvent
from ops import checklists, incidents
from ops.models import Incident, IncidentStatus, Procedure
from ops.procedures import DAILY_HEALTH_CHECK, POST_DEPLOY
from tests.conftest import PASSWORD

TRAIL = reverse("admin:cfadmin_auditevent_changelist")


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    monkeypatch.setattr("cfadmin.jobs.enqueue", lambda *args, **kwargs: None)


def login(client: Client, user: User) -> Client:
    assert client.login(request=HttpRequest(), username=user.username, password=PASSWORD)
    return client


def rows(response) -> list[dict[str, str]]:
    """Each row of the trail but the reader's login: the HTML of its cells by column."""
    found = []
    for row in re.findall(r"<tr>(.*?)</tr>", response.content.decode(), re.S):
        cells = dict(re.findall(r'<td class="field-(\w+)">(.*?)</td>', row, re.S))
        if "target_column" in cells and cells.get("action") != AuditAction.LOGIN.label:
            found.append({key: unescape(value) for key, value in cells.items()})
    return found


def link(cell: str) -> str:
    match = re.search(r'<a href="([^"]+)"', cell)
    return unescape(match.group(1)) if match else ""


def incident_about(stacks=(), tenants=(), title="Mail down") -> Incident:
    incident = Incident(title=title)
    incidents.prepare_new(incident, actor=None)
    incident.save()
    incident.stacks.set(stacks)
    incident.tenants.set(tenants)
    return incident


def test_a_target_that_exists_is_a_link_to_its_page(client, viewer, operator, make_stack):
    stack = make_stack("acme")
    audit.record(actor=operator, action=AuditAction.UPDATE, target=stack, message="x")
    audit.record(actor=operator, action=AuditAction.UPDATE, target=stack.tenant, message="y")

    found = rows(login(client, viewer).get(TRAIL))

    links = {link(row["target_column"]) for row in found}
    assert links == {
        reverse("admin:stacks_stack_change", args=[stack.pk]),
        reverse("admin:tenants_tenant_change", args=[stack.tenant.pk]),
    }


def test_a_target_that_is_gone_stays_plain_text(client, viewer, make_tenant):
    tenant = make_tenant("gone-co")
    audit.record(actor=None, action=AuditAction.DELETE, target=tenant)
    tenant.delete()

    (row,) = rows(login(client, viewer).get(TRAIL))

    assert link(row["target_column"]) == ""
    assert "gone-co" in row["target_column"]


def test_a_target_the_reader_may_not_open_is_not_linked(client, viewer, support):
    audit.record(actor=None, action=AuditAction.UPDATE, target=support, message="x")

    (row,) = rows(login(client, viewer).get(TRAIL))

    assert link(row["target_column"]) == ""  # viewers do not see staff users


def test_targets_cost_one_query_whatever_the_events_and_kinds(
    client, viewer, make_stack, django_assert_max_num_queries
):
    login(client, viewer)
    stacks = [make_stack(f"t{i}") for i in range(2)]
    for stack in stacks:
        audit.record(actor=None, action=AuditAction.UPDATE, target=stack)
    with django_assert_max_num_queries(40) as few:
        client.get(TRAIL)
    stacks += [make_stack(f"u{i}") for i in range(20)]
    for stack in stacks[2:]:
        audit.record(actor=None, action=AuditAction.UPDATE, target=stack)
        audit.record(actor=None, action=AuditAction.UPDATE, target=stack.tenant)
    with django_assert_max_num_queries(len(few.captured_queries)):  # tenants too: no more
        response = client.get(TRAIL)
    assert all(link(row["target_column"]) for row in rows(response))


def test_tenant_and_stack_values_filter_the_trail(client, viewer, make_stack):
    stack = make_stack("acme")
    other = make_stack("globex")
    audit.record(actor=None, action=AuditAction.UPDATE, target=stack)
    audit.record(actor=None, action=AuditAction.UPDATE, target=other)
    login(client, viewer)

    acme = next(row for row in rows(client.get(TRAIL)) if "acme" in row["tenant_column"])
    assert link(acme["tenant_column"]) == "?tenant=acme"
    assert link(acme["stack_column"]) == "?stack=acme-main"
    only_acme = rows(client.get(TRAIL + link(acme["tenant_column"])))
    assert [re.sub(r"<[^>]+>", "", row["stack_column"]) for row in only_acme] == ["acme-main"]
    # Filtered, a stack link keeps the tenant filter and adds its own.
    assert link(only_acme[0]["stack_column"]) == "?stack=acme-main&tenant=acme"


def events_of_tenant(slug: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(tenant_slug=slug).order_by("id"))


def test_incident_events_carry_their_first_stack_and_its_tenant(client, viewer, make_stack):
    first, second = make_stack("acme"), make_stack("globex")
    incident = incident_about(stacks=[first, second])

    incidents.add_note(incident, "Looking at the mail relay", actor=viewer)
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=viewer)

    events = events_of_tenant("acme")
    assert [(e.target_id, e.stack_name) for e in events] == [(str(incident.pk), "acme-main")] * 2
    # The trail filtered by the tenant lists the incident's events.
    found = rows(login(client, viewer).get(TRAIL, {"tenant": "acme"}))
    assert len(found) == 2 and all(str(incident) in row["target_column"] for row in found)


def test_an_incident_about_a_tenant_only_carries_the_tenant(viewer, make_tenant):
    incident = incident_about(tenants=[make_tenant("initech")])

    incidents.add_note(incident, "Customer called", actor=viewer)

    (event,) = events_of_tenant("initech")
    assert (event.tenant_slug, event.stack_name) == ("initech", "")


def test_escalation_events_carry_the_tenant(viewer, make_stack):
    from ops.models import EscalationContact

    incident = incident_about(stacks=[make_stack("acme")])

    incidents.escalate(incident, EscalationContact.objects.first(), actor=viewer)

    assert [e.message[:12] for e in events_of_tenant("acme")] == ["Escalated to"]


def test_checklist_events_carry_the_subject_stack(support, make_stack):
    stack = make_stack("acme")
    procedure = Procedure.objects.get(slug=POST_DEPLOY, active=True)

    run = checklists.start_run(procedure, actor=support, stack=stack)
    item = run.items.first()
    checklists.settle_item(item, "done", actor=support)

    events = events_of_tenant("acme")
    assert len(events) == 2
    assert {(e.tenant_slug, e.stack_name) for e in events} == {("acme", "acme-main")}


def test_a_checklist_inside_an_incident_carries_the_incidents_scope(support, make_stack):
    incident = incident_about(stacks=[make_stack("acme"), make_stack("globex")])
    procedure = Procedure.objects.get(slug=DAILY_HEALTH_CHECK, active=True)

    run = checklists.start_run_for_incident(procedure, incident, actor=support)

    assert run.stack is None and run.tenant is None  # two stacks: no one subject
    (event,) = AuditEvent.objects.filter(action=AuditAction.CREATE, target_id=str(run.pk))
    assert (event.tenant_slug, event.stack_name) == ("acme", "acme-main")
