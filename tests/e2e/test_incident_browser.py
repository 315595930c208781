"""An incident worked end to end in headless Debian Chromium: at 3 a.m. Coolify is down; the
support person on call opens an incident from the outage on the Operations dashboard, sees who
must respond by when, runs the runbook's "Complete service outage" checklist inside it,
acknowledges, notes, records the escalation, and resolves it (not without saying what fixed it).
"""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.utils import timezone
from playwright.sync_api import Page, expect

from cfadmin.models import AuditEvent
from ops.health import CheckOutcome, record
from ops.models import (
    ChecklistRun,
    EscalationContact,
    Incident,
    IncidentEventKind,
    IncidentStatus,
    Outage,
    Procedure,
    RunStatus,
)
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

INCIDENT_SHOT = "/tmp/cfadmin-incident.png"
RESOLVED_SHOT = "/tmp/cfadmin-incident-resolved.png"


@pytest.fixture
def runbook():
    if not Procedure.objects.filter(slug="complete-service-outage", active=True).exists():
        importlib.import_module("ops.migrations.0003_seed_runbook").seed(django_apps, None)


@pytest.fixture
def coolify_outage(runbook) -> Outage:
    for _ in range(2):
        record(
            [
                CheckOutcome(
                    "coolify_api",
                    "down",
                    "Coolify API: cannot connect to http://127.0.0.1:8711",
                    True,
                    {},
                    3,
                )
            ]
        )
    return Outage.objects.get(check_name="coolify_api", ended_at__isnull=True)


@pytest.fixture
def support_page(page: Page, live_server, support) -> Page:
    return log_in(
        page, live_server, support.username, then="/admin/ops/healthcheckresult/dashboard/"
    )


def test_support_works_an_outage_incident_to_resolution(
    support_page: Page, live_server, coolify_outage: Outage
):
    page = support_page
    page.reload()  # the outage was recorded after the login page went to the dashboard
    expect(page.locator("#cf-open-incidents")).to_contain_text("No open incidents.")

    # The outage row offers to open an incident; the form arrives filled in from the outage.
    outage_row = page.locator(f"#cf-outages tr[data-outage='{coolify_outage.pk}']")
    expect(outage_row).to_contain_text("ongoing")
    outage_row.get_by_role("link", name="Open incident").click()
    expect(page).to_have_url(re.compile(rf"/admin/ops/incident/add/\?outage={coolify_outage.pk}$"))
    expect(page.locator("#id_title")).to_have_value(re.compile(r"^coolify_api down since "))
    expect(page.locator("#id_severity")).to_have_value("sev1")
    platform = EscalationContact.objects.get(issue_type="Platform Down")
    expect(page.locator("#id_escalation")).to_have_value(str(platform.pk))
    expect(page.locator("#id_summary")).to_have_value(
        "Coolify API: cannot connect to http://127.0.0.1:8711"
    )
    page.fill("#id_title", "Coolify API unreachable")
    page.get_by_role("button", name="Save", exact=True).click()

    # The incident page: who responds by when, and the first line of the timeline.
    expect(page).to_have_url(re.compile(r"/admin/ops/incident/\d+/change/$"))
    incident = Incident.objects.get()
    assert incident.opened_by_repr == "support" and incident.status == IncidentStatus.OPEN
    assert list(incident.outages.all()) == [coolify_outage]
    assert incident.response_due_at == incident.opened_at + timedelta(minutes=30)
    expect(page.locator("ul.messagelist")).to_contain_text("Opened incident")
    expect(page.locator("#cf-incident-response")).to_contain_text(
        "Platform Team (Platform Down) responds within 30min"
    )
    expect(page.locator("#cf-incident-response .cf-response")).to_contain_text("awaiting response")
    expect(page.locator("#cf-timeline")).to_contain_text("Opened: Coolify API unreachable")
    expect(page.locator("#cf-timeline")).to_contain_text("outages coolify_api outage from")

    # Acknowledging is the response; the target is met.
    page.locator("#cf-incident-status-form input[name=note]").fill("on it")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#cf-incident-status")).to_have_text("Acknowledged")
    expect(page.locator("#cf-incident-response .cf-response")).to_contain_text("responded in time")

    # The runbook's procedure, run inside the incident.
    page.locator("#cf-incident-checklist-form select").select_option(
        label="Complete service outage (Emergency)"
    )
    page.get_by_role("button", name="Start checklist").click()
    expect(page).to_have_url(re.compile(r"/admin/ops/checklistrun/\d+/change/$"))
    run = ChecklistRun.objects.get()
    assert run.incident_id == incident.pk and run.procedure.slug == "complete-service-outage"
    expect(page.locator("#cf-items")).to_contain_text("systemctl status coolify")
    for item in run.items.order_by("step__position"):
        line = page.locator(f"#item-{item.pk}")
        if item.step.position == 1:
            line.locator("input[name=note]").fill("status page is hosted on Coolify too")
            line.get_by_role("button", name="Skip", exact=True).click()
        else:
            line.locator("input[name=note]").fill(f"step {item.step.position} ok")
            line.get_by_role("button", name="Done", exact=True).click()
        expect(page.locator(f"#item-{item.pk} .cf-item-state")).not_to_contain_text("To do")
    expect(page.locator("#cf-run-status")).to_contain_text("Completed")
    assert ChecklistRun.objects.get().status == RunStatus.COMPLETED

    # Back to the incident: the run is listed, the timeline says it started and completed.
    page.locator("#cf-run-incident").click()
    expect(page).to_have_url(re.compile(rf"/admin/ops/incident/{incident.pk}/change/$"))
    expect(page.locator("#cf-incident-runs")).to_contain_text("Completed, 5/5 steps")
    expect(page.locator("#cf-timeline")).to_contain_text(
        "Completed checklist “Complete service outage”"
    )

    # A note and the escalation call, as the runbook says: document everything.
    page.locator("#cf-incident-note-form textarea").fill("systemctl restart coolify; API back")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#cf-timeline")).to_contain_text("systemctl restart coolify; API back")
    page.locator("#cf-incident-escalate-form input[name=how]").fill("phoned the on-call")
    page.get_by_role("button", name="Record escalation").click()
    expect(page.locator("#cf-timeline")).to_contain_text(
        "Escalated to Platform Team (Platform Down, respond within 30min) — phoned the on-call"
    )

    # Resolving without saying what fixed it is refused, and changes nothing.
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("ul.messagelist")).to_contain_text(
        "Say what fixed it before resolving the incident."
    )
    expect(page.locator("#cf-incident-status")).to_have_text("Acknowledged")
    page.screenshot(path=INCIDENT_SHOT, full_page=True)

    page.locator("#cf-incident-resolve-form [name=resolution]").fill(
        "Coolify restarted after the host ran out of memory"
    )
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#cf-incident-status")).to_have_text("Resolved")
    expect(page.locator("#cf-incident-resolution")).to_contain_text("ran out of memory")
    expect(page.get_by_role("button", name="Reopen")).to_be_visible()
    page.screenshot(path=RESOLVED_SHOT, full_page=True)

    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolved_at is not None and incident.resolved_at <= timezone.now()
    assert incident.acknowledged_at <= incident.response_due_at
    kinds = list(incident.events.values_list("kind", flat=True))
    assert kinds == [
        IncidentEventKind.OPENED,
        IncidentEventKind.STATUS,
        IncidentEventKind.CHECKLIST,
        IncidentEventKind.CHECKLIST,
        IncidentEventKind.NOTE,
        IncidentEventKind.ESCALATED,
        IncidentEventKind.STATUS,
    ]
    assert set(incident.events.values_list("actor_repr", flat=True)) == {"support"}
    audited = AuditEvent.objects.filter(target_type__model="incident", target_id=str(incident.pk))
    assert audited.filter(action="create").count() == 1
    assert audited.filter(message__startswith="Status: Acknowledged → Resolved").count() == 1

    # The dashboard no longer lists it as open; the outage links to it.
    page.goto(f"{live_server.url}/admin/ops/healthcheckresult/dashboard/")
    expect(page.locator("#cf-open-incidents")).to_contain_text("No open incidents.")
    expect(
        page.locator(f"#cf-outages tr[data-outage='{coolify_outage.pk}']").get_by_role(
            "link", name=str(incident)
        )
    ).to_be_visible()
