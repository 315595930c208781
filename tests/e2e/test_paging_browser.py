"""Issue 16's done-means in headless Debian Chromium: support opens a SEV1 Platform Down
incident; the Platform Team's webhook (a real HTTP receiver on loopback) gets the page; nobody
acknowledges, and at the respond-by time (the clock advanced here) the next contact in priority
order is paged; support acknowledges — nobody more is paged — and posts a public update; the
public status page, opened logged out, shows the incident under its public title with the update
and none of the internal text. The worker is stood in for by running the queued django-q tasks.
Screenshots: artifacts/screenshots/paging-incident-*.png, paging-status-page-*.png."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils.module_loading import import_string
from django_q.models import OrmQ
from playwright.sync_api import Browser, Page, expect

from ops.models import EscalationContact, Incident, IncidentEventKind, IncidentStatus
from ops.notifications import paging
from tests.e2e.conftest import log_in
from tests.e2e.screens import shoot
from tests.unit.notification_helpers import add_channel

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

INTERNAL_TITLE = "pb-7 disk full after runaway backup (internal canary)"
INTERNAL_SUMMARY = "customer acme-internal-canary lost writes"
INTERNAL_NOTE = "root cause smells like cron job 42 (internal note canary)"
PUBLIC_TITLE = "Agent stacks unreachable"
PUBLIC_MESSAGE = "We found the cause and are restoring service now."
CHANNEL_TOKEN = "hooktoken-canary-7f3a"


def work_the_queue() -> list[str]:
    """What a worker does with the queued tasks (oldest first) until none is left."""
    ran = []
    while (row := OrmQ.objects.order_by("id").first()) is not None:
        task = row.task
        row.delete()
        import_string(task["func"])(*task["args"], **task["kwargs"])
        ran.append(task["func"])
    return ran


def received_by(receiver, path: str) -> list[dict]:
    return [r.json() for r in receiver.requests if r.path.startswith(path)]


def test_a_sev1_pages_the_platform_team_then_the_next_contact_until_acknowledged(
    page: Page, browser: Browser, live_server, support, webhook_receiver, settings
):
    settings.CFADMIN_BASE_URL = live_server.url
    settings.STATUS_PAGE_CACHE_SECONDS = 0
    platform = EscalationContact.objects.get(issue_type="Platform Down")
    for contact in EscalationContact.objects.all():
        secret = CHANNEL_TOKEN if contact == platform else "hook"
        add_channel(contact, webhook_receiver.url(f"/c{contact.pk}/{secret}"))
    expected_next = (
        EscalationContact.objects.exclude(pk=platform.pk).order_by("priority", "issue_type").first()
    )

    # Support opens the incident on the admin's form.
    log_in(page, live_server, support.username, then="/admin/ops/incident/add/")
    page.fill("#id_title", INTERNAL_TITLE)
    page.select_option("#id_severity", "sev1")
    page.select_option("#id_escalation", str(platform.pk))
    page.fill("#id_summary", INTERNAL_SUMMARY)
    page.get_by_role("button", name="Save", exact=True).click()
    incident = Incident.objects.get(title=INTERNAL_TITLE)
    assert incident.next_page_at == incident.response_due_at is not None

    work_the_queue()
    [page_to_platform] = received_by(webhook_receiver, f"/c{platform.pk}/")
    assert "SEV1" in page_to_platform["title"] + page_to_platform["message"]
    assert INTERNAL_TITLE in page_to_platform["title"] + page_to_platform["message"]
    assert (
        f"{live_server.url}/admin/ops/incident/{incident.pk}/change/"
        in (page_to_platform["message"])
    )
    assert received_by(webhook_receiver, f"/c{expected_next.pk}/") == []

    page.goto(f"{live_server.url}/admin/ops/incident/{incident.pk}/change/")
    page.fill("#cf-timeline-note", INTERNAL_NOTE)
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#cf-panel-notifications")).to_contain_text("Platform Team")

    # Nobody acknowledges: at the respond-by time the next contact in priority order is paged.
    assert paging.reescalate_due(now=incident.response_due_at - timedelta(seconds=1)) == 0
    assert paging.reescalate_due(now=incident.response_due_at + timedelta(seconds=1)) == 1
    work_the_queue()
    [page_to_next] = received_by(webhook_receiver, f"/c{expected_next.pk}/")
    assert INTERNAL_TITLE in page_to_next["title"] + page_to_next["message"]
    page.reload()
    expect(page.locator("body")).to_contain_text(f"re-escalated to {expected_next.team}")
    shoot(page, "paging-incident")

    # Support acknowledges: no one else is paged however late it gets.
    page.get_by_role("button", name="Acknowledge").click()
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.ACKNOWLEDGED and incident.next_page_at is None
    assert paging.reescalate_due(now=incident.response_due_at + timedelta(hours=6)) == 0
    work_the_queue()
    assert len(webhook_receiver.requests) == 2

    # ... and tells customers on the status page.
    page.fill("#cf-public-title", PUBLIC_TITLE)
    page.select_option("#cf-public-status", "identified")
    page.fill("#cf-public-message", PUBLIC_MESSAGE)
    page.get_by_role("button", name="Post public update").click()
    expect(page.locator("body")).to_contain_text(PUBLIC_MESSAGE)
    assert incident.events.filter(kind=IncidentEventKind.PUBLIC_UPDATE).count() == 1

    # The public status page, logged out.
    public = browser.new_context().new_page()
    public.set_viewport_size({"width": 1400, "height": 1000})
    public.goto(f"{live_server.url}/{settings.STATUS_PAGE_PATH}")
    expect(public).to_have_url(f"{live_server.url}/{settings.STATUS_PAGE_PATH}")
    expect(public.locator("body")).to_contain_text(PUBLIC_TITLE)
    expect(public.locator("body")).to_contain_text(PUBLIC_MESSAGE)
    html = public.content()
    for internal in (INTERNAL_TITLE, INTERNAL_SUMMARY, INTERNAL_NOTE, platform.team):
        assert internal not in html
    shoot(public, "paging-status-page")
    public.context.close()

    # No payload carried the channel's token.
    assert all(CHANNEL_TOKEN not in r.text for r in webhook_receiver.requests)
