"""The stack pages support lives in: a stack's page ordered by what support needs first and
linked to everything about it, the operation page's links, the stack list (live, deleted
stacks hidden, Deploy instead of Add), read-only names, and the tenant page's stack links."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from ops.checklists import active_procedure, start_run
from ops.models import RunStatus
from ops.procedures import POST_DEPLOY
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation, Stack
from tests.unit.incident_helpers import login, make_incident

pytestmark = pytest.mark.django_db

DOMAIN = "demo.customer123.com"
CHANGELIST = reverse("admin:stacks_stack_changelist")


def stack_url(stack: Stack) -> str:
    return reverse("admin:stacks_stack_change", args=[stack.pk])


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def hrefs(html: str) -> list[str]:
    return [unescape(href) for href in re.findall(r'href="([^"]+)"', html)]


def deployed(stack: Stack) -> Operation:
    """A succeeded deploy, and the validation run its success hook opened (linked to it, with
    the hook's note), with nothing settled yet."""
    operation = Operation.objects.create(
        stack=stack,
        kind=OperationKind.DEPLOY,
        status=OperationStatus.SUCCEEDED,
        requested_by_repr="operator",
        duration_ms=1200,
    )
    Stack.objects.filter(pk=stack.pk).update(status=StackStatus.RUNNING)
    run = start_run(
        active_procedure(POST_DEPLOY), actor=None, stack=stack, note=f"Opened by {operation}"
    )
    run.operation = operation
    run.save(update_fields=["operation"])
    return operation


@pytest.fixture
def stack(make_stack) -> Stack:
    return make_stack(
        "customer-123",
        "customer-123-main",
        status=StackStatus.RUNNING,
        domains={"webui": DOMAIN},
        coolify_service_uuid="svc-uuid-1234",
        pocketbase_id="pbrec000000001",
    )


# --- the stack page ------------------------------------------------------------------------------


def test_the_stack_page_puts_what_support_needs_first_and_technical_ids_last(
    client, support, stack
):
    deployed(stack)
    make_incident(support, title="Chat down").stacks.set([stack])
    html = html_of(login(client, support).get(stack_url(stack)))

    marks = [
        'id="cf-stack-status"',
        'id="cf-operation-progress"',
        'id="cf-stack-checklists"',  # the open checklist run
        'id="cf-stack-incidents"',  # the open incidents
        'id="cf-stack-domains"',
        'id="cf-stack-checklists-panel"',
        'id="cf-stack-incidents-panel"',
        'id="cf-stack-links"',
        'id="domains-group"',
        'id="operations-group"',
        "field-coolify_service_uuid",
        "field-pocketbase_id",
    ]
    positions = [html.index(mark) for mark in marks]
    assert positions == sorted(positions), dict(zip(marks, positions, strict=True))
    top = html[: html.index('id="domains-group"')]
    assert "svc-uuid-1234" not in top and "pbrec000000001" not in top
    assert "Chat down" in top


def test_the_stack_page_links_to_everything_about_the_stack(client, operator, support, stack):
    operation = deployed(stack)
    incident = make_incident(support, title="Chat down")
    incident.stacks.set([stack])
    login(client, operator)
    html = html_of(client.get(stack_url(stack)))
    links = hrefs(html)
    run = stack.checklist_runs.get()

    assert reverse("admin:tenants_tenant_change", args=[stack.tenant_id]) in links
    operations = reverse("admin:stacks_operation_changelist") + f"?stack__id__exact={stack.pk}"
    assert operations in links
    assert reverse("admin:stacks_operation_change", args=[operation.pk]) in links
    runs = reverse("admin:ops_checklistrun_changelist") + f"?stack__id__exact={stack.pk}"
    assert runs in links
    assert reverse("admin:ops_checklistrun_change", args=[run.pk]) in links
    incidents = reverse("admin:ops_incident_changelist") + f"?stacks__id__exact={stack.pk}"
    assert incidents in links
    assert reverse("admin:ops_incident_change", args=[incident.pk]) in links
    audit = (
        reverse("admin:cfadmin_auditevent_changelist")
        + "?tenant=customer-123&stack=customer-123-main"
    )
    assert audit in links
    assert f"https://{DOMAIN}/" in links

    # The filtered lists show this stack's rows only.
    other = Stack.objects.create(
        tenant=stack.tenant, project_name="p", stack_name="other", template_name="openclaw-agent"
    )
    start_run(active_procedure(POST_DEPLOY), actor=None, stack=other)
    shown = client.get(runs).context["cl"].result_list
    assert [r.pk for r in shown] == [run.pk]
    assert [i.pk for i in client.get(incidents).context["cl"].result_list] == [incident.pk]
    assert [o.pk for o in client.get(operations).context["cl"].result_list] == [operation.pk]


def test_a_deploys_success_links_to_its_validation_run_and_the_open_run_is_at_the_top(
    client, support, stack
):
    operation = deployed(stack)
    run = stack.checklist_runs.get()
    html = html_of(login(client, support).get(stack_url(stack)))

    notice = re.search(r'<p[^>]*id="cf-stack-checklists-notice".*?</p>', html, re.S).group(0)
    assert f"{operation.get_kind_display()} succeeded — validation run #{run.pk}" in notice
    assert reverse("admin:ops_checklistrun_change", args=[run.pk]) in notice
    assert "open · 0 of 5 steps settled" in notice
    headline = re.search(r'<p id="cf-stack-checklists">.*?</p>', html, re.S).group(0)
    assert f"Post-deploy validation #{run.pk}" in headline

    # Completed: the notice says so and no run is open any more.
    run.items.update(state="passed")
    type(run).objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    html = html_of(client.get(stack_url(stack)))
    assert "(completed)" in re.search(r'id="cf-stack-checklists-notice".*?</p>', html, re.S)[0]
    assert re.search(r'<p id="cf-stack-checklists">none open</p>', html)


def test_a_failed_or_other_operation_shows_no_validation_notice(client, support, stack):
    operation = deployed(stack)
    Operation.objects.create(
        stack=stack,
        kind=OperationKind.RESTART,
        status=OperationStatus.FAILED,
        requested_by_repr="operator",
    )
    html = html_of(login(client, support).get(stack_url(stack)))
    assert "cf-stack-checklists-notice" not in html  # the last operation is the restart
    assert f"{operation} succeeded" not in html


def test_the_live_poll_answers_the_summary_alone(client, viewer, stack):
    deployed(stack)
    login(client, viewer)
    headers = {"HX-Request": "true", "HX-Target": "cf-stack-live"}

    response = client.get(stack_url(stack), headers=headers)

    html = html_of(response)
    assert "<html" not in html and "<form" not in html.replace('id="cf-stack-actions"', "")
    assert html.lstrip().startswith('<div id="cf-stack-live"')
    assert 'hx-select="#cf-stack-live"' in html
    assert "Post-deploy validation" in html
    assert client.get(
        reverse("admin:stacks_stack_change", args=[999]), headers=headers
    ).status_code in (302, 404)


def test_a_viewer_sees_no_actions_nor_incident_link(client, viewer, stack):
    html = html_of(login(client, viewer).get(stack_url(stack)))
    assert 'id="cf-stack-actions"' not in html
    assert reverse("admin:ops_incident_add") not in html
    assert 'id="cf-stack-incidents">none</p>' in html


# --- read-only names, no bare add ----------------------------------------------------------------


@pytest.mark.parametrize("status", [StackStatus.PENDING, StackStatus.RUNNING])
def test_a_stacks_names_tenant_and_template_are_read_only(client, operator, make_stack, status):
    stack = make_stack("customer-123", "customer-123-main", status=status)
    other = make_stack("customer-456", "customer-456-main").tenant
    login(client, operator)
    html = html_of(client.get(stack_url(stack)))
    for name in ("tenant", "stack_name", "project_name", "template_name"):
        assert f'name="{name}"' not in html, name

    form = {
        "tenant": str(other.pk),
        "stack_name": "renamed",
        "project_name": "renamed-project",
        "template_name": "base-llm",
        **{
            f"{prefix}-{key}": value
            for prefix in ("domains", "secrets", "operations")
            for key, value in (
                ("TOTAL_FORMS", "0"),
                ("INITIAL_FORMS", "0"),
                ("MIN_NUM_FORMS", "0"),
                ("MAX_NUM_FORMS", "1000"),
            )
        },
    }
    assert client.post(stack_url(stack), form).status_code == 302
    stack.refresh_from_db()
    assert (stack.tenant.slug, stack.stack_name, stack.project_name, stack.template_name) == (
        "customer-123",
        "customer-123-main",
        "customer-123-project",
        "openclaw-agent",
    )


def test_stacks_are_deployed_not_added(client, superuser):
    login(client, superuser)
    html = html_of(client.get(CHANGELIST))
    assert reverse("admin:stacks_stack_add") not in html
    assert "Deploy a new stack" in html
    assert reverse("admin:stacks_stack_deploy") in hrefs(html)
    assert client.get(reverse("admin:stacks_stack_add")).status_code == 403
    index = html_of(client.get(reverse("admin:index")))
    assert reverse("admin:stacks_stack_add") not in index


# --- the stack list ------------------------------------------------------------------------------


def names(response) -> list[str]:
    return sorted(stack.stack_name for stack in response.context["cl"].result_list)


def test_deleted_stacks_are_hidden_unless_asked_for(client, superuser, make_stack):
    make_stack("customer-123", "live-one", status=StackStatus.RUNNING)
    make_stack("customer-123", "broken", status=StackStatus.ERROR)
    make_stack("customer-123", "gone", status=StackStatus.DELETED)
    login(client, superuser)

    assert names(client.get(CHANGELIST)) == ["broken", "live-one"]
    assert names(client.get(CHANGELIST + "?status__exact=deleted")) == ["gone"]
    assert names(client.get(CHANGELIST + "?status__exact=all")) == ["broken", "gone", "live-one"]
    assert names(client.get(CHANGELIST + "?status__exact=error")) == ["broken"]
    assert names(client.get(CHANGELIST + "?status__in=deleted,error")) == ["broken", "gone"]
    assert names(client.get(CHANGELIST + "?q=gone")) == []

    sidebar = html_of(client.get(CHANGELIST)).split('id="changelist-filter"')[1]
    assert "Live (not deleted)" in sidebar and "All, deleted included" in sidebar


def test_the_stack_list_is_live_and_its_domains_are_links(client, superuser, stack):
    login(client, superuser)
    html = html_of(client.get(CHANGELIST + "?status__exact=running"))
    region = re.search(r'<div id="cf-stack-results"[^>]*>', html).group(0)
    assert 'hx-get="/admin/stacks/stack/?status__exact=running"' in region
    assert 'hx-select="#cf-stack-results"' in region
    assert html.index('id="cf-stack-results"') < html.index('id="result_list"')
    assert f'href="https://{DOMAIN}/"' in html


def test_the_breadcrumbs_name_the_app_not_stacks_twice(client, superuser, stack):
    login(client, superuser)
    for url in (CHANGELIST, stack_url(stack)):
        crumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', html_of(client.get(url)), re.S)
        text = re.sub(r"<[^>]+>|\s+", " ", unescape(crumbs.group(1)))
        assert "Agent stacks \u203a Stacks" in re.sub(r" +", " ", text)
        assert "Stacks \u203a Stacks" not in re.sub(r" +", " ", text)


# --- the operation page --------------------------------------------------------------------------


def test_the_operation_page_links_to_its_stack_and_the_run_it_opened(client, support, stack):
    operation = deployed(stack)
    run = stack.checklist_runs.get()
    url = reverse("admin:stacks_operation_change", args=[operation.pk])
    html = html_of(login(client, support).get(url))

    block = re.search(r'<p[^>]*id="cf-operation-links".*?</p>', html, re.S).group(0)
    assert stack_url(stack) in block
    assert reverse("admin:ops_checklistrun_change", args=[run.pk]) in block
    assert f"Post-deploy validation #{run.pk}" in block

    other = Operation.objects.create(
        stack=stack, kind=OperationKind.RESTART, status=OperationStatus.SUCCEEDED
    )
    html = html_of(client.get(reverse("admin:stacks_operation_change", args=[other.pk])))
    block = re.search(r'<p[^>]*id="cf-operation-links".*?</p>', html, re.S).group(0)
    assert stack_url(stack) in block and "checklistrun" not in block


# --- the tenant page -----------------------------------------------------------------------------


def test_the_tenant_page_links_its_stacks_and_their_open_checklist_runs(
    client, support, stack, make_stack
):
    deployed(stack)
    quiet = make_stack(stack.tenant, "customer-123-quiet", status=StackStatus.RUNNING)
    run = stack.checklist_runs.get()
    html = html_of(
        login(client, support).get(reverse("admin:tenants_tenant_change", args=[stack.tenant_id]))
    )

    assert f'<a href="{stack_url(stack)}">customer-123-main</a>' in html
    assert f'<a href="{stack_url(quiet)}">customer-123-quiet</a>' in html
    run_url = reverse("admin:ops_checklistrun_change", args=[run.pk])
    assert f'<a href="{run_url}">open checklist run #{run.pk}</a>' in html
    assert "Add stack for this tenant" not in html
