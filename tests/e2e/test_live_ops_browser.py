"""The ops pages update themselves while open, in headless Debian Chromium (issue 14): the
operations dashboard shows a deploy running and then finished, and a new health check result,
without a reload; a checklist run page shows an automatic check's result that arrived after
the page loaded, and never throws away a note the person typed; the incident page's timeline
takes a note added elsewhere. Each test marks the window (window.cfMarker) and checks the mark
is still there: the page was not reloaded. Screenshots at 1400 and 390 px (tests/e2e/screens.py),
with no horizontal overflow on a phone."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from ops import incidents
from ops.checklists import active_procedure, start_run
from ops.health import CheckOutcome, record
from ops.models import ChecklistItem, ItemState
from ops.procedures import POST_DEPLOY
from stacks.choices import OperationKind, OperationStatus
from stacks.models import Operation
from tests.e2e.screens import overflows_horizontally, shoot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

POLL = 15_000  # ms: a poll every 5 s, with room for a loaded machine
DASHBOARD = "/admin/ops/healthcheckresult/dashboard/"


def mark(page: Page) -> None:
    page.evaluate("window.cfMarker = 1")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.cfMarker") == 1


def test_the_dashboard_shows_a_deploy_running_then_finished_without_a_reload(
    support_page: Page, live_server, make_stack
):
    page = support_page
    stack = make_stack(domains={"web": "customer-123.example.com"})
    page.goto(f"{live_server.url}{DASHBOARD}")
    expect(page.locator("#cf-dashboard-operations-summary")).to_contain_text("0 running")
    expect(page.locator("#cf-dashboard-live .cf-live-age")).to_be_visible()
    mark(page)

    # A deploy starts after the page loaded (as the worker would claim it).
    operation = Operation.objects.create(
        stack=stack,
        kind=OperationKind.DEPLOY,
        status=OperationStatus.RUNNING,
        requested_by_repr="support",
        current_step="create_service",
        started_at=timezone.now(),
    )
    row = page.locator(f"#cf-operations tr[data-operation='{operation.pk}']")
    expect(row).to_contain_text("Running", timeout=POLL)
    expect(row).to_contain_text("create_service")
    expect(page.locator("#cf-dashboard-operations-summary")).to_contain_text("1 running")

    # It finishes, and a health check reports: both show up, still without a reload.
    Operation.objects.filter(pk=operation.pk).update(
        status=OperationStatus.SUCCEEDED, current_step="", finished_at=timezone.now()
    )
    record([CheckOutcome("coolify_api", "ok", "Coolify API OK (version 4.0.0)", True, {}, 12)])
    expect(row).to_contain_text("Succeeded", timeout=POLL)
    expect(page.locator("#cf-dashboard-operations-summary")).to_contain_text("0 running")
    expect(page.locator("#cf-checks tr[data-check=coolify_api]")).to_contain_text("Coolify API OK")
    expect(page.locator("#cf-dashboard-live .cf-live-age")).to_contain_text("updated")
    assert_not_reloaded(page)

    shoot(page, "dashboard")
    page.set_viewport_size({"width": 390, "height": 900})
    assert not overflows_horizontally(page)
    expect(page.get_by_role("button", name="Run health checks now")).to_be_in_viewport()


def test_a_checklist_run_shows_an_automatic_result_that_arrived_after_load(
    support_page: Page, live_server, make_stack
):
    page = support_page
    stack = make_stack()
    operation = Operation.objects.create(
        stack=stack,
        kind=OperationKind.DEPLOY,
        status=OperationStatus.SUCCEEDED,
        requested_by_repr="support",
        finished_at=timezone.now(),
    )
    run = start_run(
        active_procedure(POST_DEPLOY), actor=None, stack=stack, note=f"Opened by {operation}"
    )
    run.operation = operation  # as ops.checklists.open_validation_run links it
    run.save(update_fields=["operation"])
    automatic = run.items.exclude(step__probe="").order_by("step__position").first()
    page.goto(f"{live_server.url}/admin/ops/checklistrun/{run.pk}/change/")
    expect(page.locator("#cf-run-operation")).to_have_text(f"Deploy #{operation.pk}")
    expect(page.locator(f"#item-{automatic.pk} .cf-item-state")).to_contain_text("To do")
    mark(page)

    # The worker's probe passes after the page loaded.
    ChecklistItem.objects.filter(pk=automatic.pk).update(
        state=ItemState.PASSED,
        evidence={"probe": automatic.step.probe, "service": "found"},
        settled_by_repr="cfadmin probe",
        settled_at=timezone.now(),
    )
    expect(page.locator(f"#item-{automatic.pk} .cf-item-state")).to_contain_text(
        "Verified automatically", timeout=POLL
    )
    assert_not_reloaded(page)
    shoot(page, "checklist-run")
    page.set_viewport_size({"width": 390, "height": 900})
    assert not overflows_horizontally(page)
    page.set_viewport_size({"width": 1400, "height": 1000})

    # The operation link leads to the deploy.
    page.locator("#cf-run-operation").click()
    expect(page).to_have_url(f"{live_server.url}/admin/stacks/operation/{operation.pk}/change/")


def test_a_typed_note_on_a_checklist_run_survives_the_polls(
    support_page: Page, live_server, make_stack
):
    page = support_page
    stack = make_stack()
    run = start_run(active_procedure(POST_DEPLOY), actor=None, stack=stack)
    first, second = run.items.order_by("step__position")[:2]
    page.goto(f"{live_server.url}/admin/ops/checklistrun/{run.pk}/change/")
    mark(page)

    # Typed, then left (focus elsewhere): the region is not replaced under it.
    page.locator(f"#item-{first.pk} input[name=note]").fill("checked by hand in Coolify")
    page.locator("h1").click()
    ChecklistItem.objects.filter(pk=second.pk).update(state=ItemState.PASSED)
    page.wait_for_timeout(7_000)  # more than a poll
    expect(page.locator(f"#item-{first.pk} input[name=note]")).to_have_value(
        "checked by hand in Coolify"
    )
    assert_not_reloaded(page)


def test_the_incident_page_takes_a_note_added_elsewhere(
    support_page: Page, live_server, support, make_stack
):
    from tests.unit.incident_helpers import contact, make_incident

    page = support_page
    stack = make_stack()
    incident = make_incident(
        support, title="Proxy returns 502", escalation=contact("Platform Down"), owner=support
    )
    incident.stacks.add(stack)
    incident.tenants.add(stack.tenant)
    incidents.record_opened(incident, actor=support)
    page.goto(f"{live_server.url}/admin/ops/incident/{incident.pk}/change/")
    expect(page.locator("#cf-incident-actions")).to_contain_text("Respond")
    expect(
        page.locator("#cf-incident-affects").get_by_role("link", name=str(stack))
    ).to_be_visible()
    mark(page)

    incidents.add_note(incident, "restarted the proxy on host 2", actor=support)
    incidents.change_status(incident, "acknowledged", actor=support)
    expect(page.locator("#cf-timeline")).to_contain_text(
        "restarted the proxy on host 2", timeout=POLL
    )
    expect(page.locator("#cf-incident-status")).to_have_text("Acknowledged", timeout=POLL)
    # Its forms were made for an open incident: the page says so rather than swap them.
    expect(page.locator("#cf-incident-moved-on")).to_contain_text("now acknowledged")
    assert_not_reloaded(page)

    shoot(page, "incident-page")
    page.set_viewport_size({"width": 390, "height": 900})
    assert not overflows_horizontally(page)
