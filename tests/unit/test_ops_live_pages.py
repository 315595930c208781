"""The ops pages a support person keeps open (issue 14): live regions on the dashboard, the
checklist run and incident pages and their lists (a poll answered with only the region, no
messages used up, no form with a field inside a read-only region); links from a run to the
operation that opened it and to its stack and tenant, from an incident to what it affects;
the incident page's actions labelled and grouped; owners limited to support and up."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from ops import incident_actions, incidents
from ops.checklists import active_procedure, start_run
from ops.models import ChecklistItem, IncidentStatus, ItemState
from ops.procedures import POST_DEPLOY
from ops.run_origin import opening_operation
from stacks.choices import OperationKind, OperationStatus
from stacks.models import Operation
from tests.unit.incident_helpers import change_url, login, make_incident, page, select_value

DASHBOARD = reverse("admin:ops_dashboard")
HTMX = {"HTTP_HX_REQUEST": "true"}
FIELD = re.compile(r"<(input|select|textarea)\b([^>]*)>")


def region(html_page: str, region_id: str) -> str:
    """The element with this id, to its matching close (regions are <div>s)."""
    start = html_page.index(f'id="{region_id}"')
    start = html_page.rindex("<div", 0, start)
    depth, at = 0, start
    for tag in re.finditer(r"<(/?)div\b", html_page[start:]):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            at = start + tag.end()
            break
    return html_page[start : html_page.index(">", at) + 1]


def visible_fields(html: str) -> list[str]:
    return [
        attrs
        for tag, attrs in FIELD.findall(html)
        if not re.search(r'type="(hidden|submit)"', attrs)
    ]


def deploy(stack, status=OperationStatus.SUCCEEDED, **fields) -> Operation:
    return Operation.objects.create(
        stack=stack,
        kind=OperationKind.DEPLOY,
        status=status,
        requested_by_repr="support",
        **fields,
    )


def validation_run(stack, operation: Operation):
    """The run ops.checklists.open_validation_run opens, without its probes: linked to the
    operation, with the note it writes."""
    run = start_run(
        active_procedure(POST_DEPLOY), actor=None, stack=stack, note=f"Opened by {operation}"
    )
    run.operation = operation
    run.save(update_fields=["operation"])
    return run


# --- links ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_validation_run_links_the_deploy_that_opened_it_and_its_stack(
    client, support, make_stack
):
    stack = make_stack()
    operation = deploy(stack, finished_at=timezone.now())
    run = validation_run(stack, operation)
    html_page = page(
        login(client, support).get(reverse("admin:ops_checklistrun_change", args=[run.pk]))
    )

    operation_url = reverse("admin:stacks_operation_change", args=[operation.pk])
    assert (
        f'<a href="{operation_url}" id="cf-run-operation">Deploy #{operation.pk}</a>' in html_page
    )
    assert f'href="{reverse("admin:stacks_stack_change", args=[stack.pk])}" id="cf-run-stack"' in (
        html_page
    )
    tenant_url = reverse("admin:tenants_tenant_change", args=[stack.tenant_id])
    assert f'href="{tenant_url}" id="cf-run-tenant"' in html_page


@pytest.mark.django_db
def test_a_run_links_the_operation_it_was_opened_by_not_what_its_note_says(
    client, support, make_stack
):
    stack = make_stack()
    operation = deploy(stack)
    # A person's run whose note reads like the hook's: a note, not a link.
    typed = start_run(
        active_procedure(POST_DEPLOY), actor=support, stack=stack, note=f"Opened by {operation}"
    )
    assert opening_operation(typed) is None
    run = validation_run(stack, operation)
    run.note = "Checked by hand after the deploy"
    run.save(update_fields=["note"])
    assert opening_operation(run) == operation

    login(client, support)
    typed_page = page(client.get(reverse("admin:ops_checklistrun_change", args=[typed.pk])))
    assert 'id="cf-run-operation"' not in typed_page
    assert f'<p id="cf-run-note">Opened by {operation}</p>' in typed_page
    run_page = page(client.get(reverse("admin:ops_checklistrun_change", args=[run.pk])))
    operation_url = reverse("admin:stacks_operation_change", args=[operation.pk])
    assert f'<a href="{operation_url}" id="cf-run-operation">Deploy #{operation.pk}</a>' in (
        run_page
    )


@pytest.mark.django_db
def test_the_runs_list_links_each_runs_stack(client, support, make_stack):
    stack = make_stack()
    validation_run(stack, deploy(stack))
    html_page = page(login(client, support).get(reverse("admin:ops_checklistrun_changelist")))
    assert f'<a href="{reverse("admin:stacks_stack_change", args=[stack.pk])}">{stack}</a>' in (
        html_page
    )


@pytest.mark.django_db
def test_an_incident_links_the_stacks_and_tenants_it_affects(client, support, make_stack):
    stack = make_stack()
    incident = make_incident(support)
    incident.stacks.add(stack)
    incident.tenants.add(stack.tenant)
    login(client, support)
    stack_link = f'<a href="{reverse("admin:stacks_stack_change", args=[stack.pk])}">{stack}</a>'
    tenant_url = reverse("admin:tenants_tenant_change", args=[stack.tenant_id])

    affects = region(page(client.get(change_url(incident))), "cf-incident-summary")
    assert stack_link in affects and f'<a href="{tenant_url}">{stack.tenant.slug}</a>' in affects
    listed = page(client.get(reverse("admin:ops_incident_changelist")))
    assert stack_link in listed


# --- the incident page's actions ------------------------------------------------------------


@pytest.mark.django_db
def test_the_incident_actions_are_grouped_and_every_field_is_labelled(client, support):
    incident = make_incident(support)
    html_page = page(login(client, support).get(change_url(incident)))
    actions = html_page[
        html_page.index('id="cf-incident-actions"') : html_page.index("<h2>Timeline")
    ]

    headings = re.findall(r'<h2 id="cf-action-group-\d+">([^<]+)</h2>', actions)
    assert headings == ["Respond", "Record", "Runbook", "Status page", "Customers"]
    legends = re.findall(r"<legend>([^<]+)</legend>", actions)
    assert legends == [
        "Change status",
        "Resolve",
        "Add to the timeline",
        "Record an escalation",
        "Run a runbook procedure",
        "Put it on the status page",
        "Message customers",
    ]
    fields = visible_fields(actions)
    # status note, resolution, note, contact, how, procedure; public title, status, message
    # (no tenant has a contact e-mail: the customers' form only says so)
    assert len(fields) == 9
    for attrs in fields:
        field_id = re.search(r'id="([^"]+)"', attrs)
        assert field_id, attrs
        assert f'<label for="{field_id.group(1)}">' in actions, attrs


@pytest.mark.django_db
def test_a_resolved_incident_offers_reopen_with_a_reason(client, support):
    incident = make_incident(support, status=IncidentStatus.RESOLVED)
    groups = incident_actions.action_groups(incident, can_start_runs=False)
    assert [(g.heading, [f.legend for f in g.forms]) for g in groups] == [
        ("Respond", ["Reopen"]),
        ("Record", ["Add to the timeline", "Record an escalation"]),
    ]
    html_page = page(login(client, support).get(change_url(incident)))
    assert '<label for="cf-status-note">Why reopen (required)</label>' in html_page


# --- owner choices ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_incident_owners_are_support_and_up_never_viewers(
    client, viewer, support, operator, admin_role, superuser
):
    direct = User.objects.create_user("granted", is_staff=True)
    direct.user_permissions.add(Permission.objects.get(codename="change_incident"))
    User.objects.create_user("left", is_staff=True, is_active=False).groups.add(
        *support.groups.all()
    )
    User.objects.create_user("customer")  # not staff
    expected = ["admin", "granted", "operator", "root", "support"]
    assert [u.username for u in incident_actions.owner_choices()] == expected

    html_page = page(login(client, support).get(reverse("admin:ops_incident_add")))
    options = re.search(r'<select[^>]*name="owner"[^>]*>(.*?)</select>', html_page, re.S)
    assert re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', options.group(1)) == expected

    response = client.post(
        reverse("admin:ops_incident_add"),
        {"title": "Slow", "severity": "sev3", "owner": viewer.pk, "summary": ""},
    )
    assert response.status_code == 200  # the form again, with the error beside the field
    assert response.context["adminform"].form.errors["owner"]
    assert select_value(page(response), "owner") == []


# --- live regions -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_dashboard_shows_running_and_just_finished_operations(client, support, make_stack):
    running = deploy(make_stack("customer-1"), OperationStatus.RUNNING, current_step="wait")
    done = deploy(make_stack("customer-2"), finished_at=timezone.now())
    live = region(page(login(client, support).get(DASHBOARD)), "cf-dashboard-live")
    assert "1 running or queued" in live
    rows = re.findall(r'<tr class="cf-operation" data-operation="(\d+)" data-status="(\w+)">', live)
    assert rows == [(str(running.pk), "running"), (str(done.pk), "succeeded")]
    assert reverse("admin:stacks_operation_change", args=[running.pk]) in live


@pytest.mark.django_db
def test_the_dashboard_region_is_live_and_holds_no_field(client, support):
    html_page = page(login(client, support).get(DASHBOARD))
    live = region(html_page, "cf-dashboard-live")
    assert 'hx-get="/admin/ops/healthcheckresult/dashboard/"' in live
    assert 'hx-select="#cf-dashboard-live"' in live and "cf-live-age" in live
    assert visible_fields(live) == []
    assert "Run health checks now" in html_page and "Run health checks now" not in live


@pytest.mark.django_db
def test_a_dashboard_poll_gets_the_region_only_and_leaves_the_messages(client, support):
    login(client, support)
    client.post(reverse("admin:ops_run_healthchecks"))  # a message waits for the next page
    poll = page(client.get(DASHBOARD, **HTMX))
    assert poll.lstrip().startswith('<div id="cf-dashboard-live"')
    assert "messagelist" not in poll and "<html" not in poll
    shown = page(client.get(DASHBOARD))
    assert "the dashboard updates by itself as their results arrive" in shown


@pytest.mark.django_db
def test_a_run_page_poll_shows_an_automatic_result_that_came_later(client, support, make_stack):
    stack = make_stack()
    run = validation_run(stack, deploy(stack))
    url = reverse("admin:ops_checklistrun_change", args=[run.pk])
    login(client, support)
    assert 'id="cf-run" data-status="open"' in page(client.get(url))

    item = run.items.exclude(step__probe="").first()
    ChecklistItem.objects.filter(pk=item.pk).update(
        state=ItemState.PASSED, settled_by_repr="cfadmin probe", settled_at=timezone.now()
    )
    poll = page(client.get(url, **HTMX))
    assert "<html" not in poll and 'hx-select="#cf-run"' in poll
    assert re.search(rf'id="item-{item.pk}".*?Verified automatically', poll, re.S)


@pytest.mark.django_db
def test_an_incident_poll_gets_the_read_only_parts_only(client, support):
    incident = make_incident(support)
    incidents.record_opened(incident, actor=support)
    login(client, support)
    html_page = page(client.get(change_url(incident)))
    for region_id in ("cf-incident-summary", "cf-incident-activity"):
        assert visible_fields(region(html_page, region_id)) == []
        assert f'hx-select="#{region_id}"' in html_page

    incidents.add_note(incident, "restarted the proxy", actor=support)
    poll = page(client.get(change_url(incident), **HTMX))
    assert "restarted the proxy" in poll and 'id="cf-incident-summary"' in poll
    assert "<form" not in poll and "<html" not in poll
    assert f'hx-get="{change_url(incident)}?seen=open"' in html_page
    assert "cf-incident-moved-on" not in poll

    # Someone else acknowledges: the page's forms are for an open incident, and it says so.
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=support)
    moved = page(client.get(change_url(incident) + "?seen=open", **HTMX))
    assert 'id="cf-incident-moved-on"' in moved and "now <strong>acknowledged" in moved
    assert f'hx-get="{change_url(incident)}?seen=open"' in moved  # the region keeps asking so


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["incident", "checklistrun"])
def test_the_lists_results_are_live_regions(client, support, model):
    html_page = page(login(client, support).get(reverse(f"admin:ops_{model}_changelist")))
    assert f'id="cf-{model}-results"' in html_page
    assert f'hx-select="#cf-{model}-results"' in html_page
