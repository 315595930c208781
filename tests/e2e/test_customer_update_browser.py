"""Issue 16 in headless Debian Chromium, from the incident's page: the notifications panel
(who was told, the outcome, when and whom cfadmin pages next) and a customer update — support
chooses a template, reads each tenant's message on the compose page, edits the subject and
sends; the worker's jobs deliver one e-mail per tenant contact to a real SMTP server and the
panel lists them. Screenshots: artifacts/screenshots/incident-notifications-*.png,
customer-update-*.png (tests/e2e/screens.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string
from playwright.sync_api import Page, expect

from ops.models import (
    CustomerMessageTemplate,
    DeliveryStatus,
    EscalationContact,
    Incident,
    Notification,
    NotifyEvent,
)
from tests.e2e.conftest import log_in
from tests.e2e.screens import shoot
from tests.unit.incident_helpers import make_incident
from tests.unit.notification_helpers import add_channel

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STACK_SECRET = "canary-e2e16-stack-secret"
NEWS = "Bots answer again. We keep watching the API for the next hour."


def test_support_sees_who_was_told_and_messages_the_affected_customers(
    page: Page, live_server, support, make_tenant, make_stack, smtp_server, monkeypatch
):
    queued: list[tuple[str, tuple]] = []
    monkeypatch.setattr(
        "ops.notifications.delivery.enqueue", lambda func, *args: queued.append((func, args))
    )
    platform = EscalationContact.objects.get(issue_type="Platform Down")
    add_channel(EscalationContact.objects.get(issue_type="Customer Data Loss"), "backup@ops.test")
    incident = make_incident(support, title="pb-2 connection pool exhausted", escalation=platform)
    Incident.objects.filter(pk=incident.pk).update(
        public_title="API errors for some bots",
        next_page_at=timezone.now() + timedelta(minutes=18),
    )
    acme = make_tenant("acme", name="Acme Ltd", contact_email="ops@acme.test")
    beta = make_tenant("beta", name="Beta GmbH", contact_email="it@beta.test")
    incident.tenants.add(acme)
    incident.stacks.add(make_stack(beta, "beta-main", secrets={"API_KEY": STACK_SECRET}))
    for minutes, status, attempts, error in (
        (9, DeliveryStatus.SENT, 1, ""),
        (4, DeliveryStatus.RETRYING, 2, "HTTP 500 from hooks.chat.test"),
    ):
        Notification.objects.create(
            event=NotifyEvent.INCIDENT_OPENED,
            recipient_repr="Platform Team (webhook)" if attempts == 1 else "Platform Team (chat)",
            title="[SEV2] Incident opened",
            body="…",
            incident=incident,
            status=status,
            attempts=attempts,
            last_error=error,
            created_at=timezone.now() - timedelta(minutes=minutes),
        )
    template, _ = CustomerMessageTemplate.objects.get_or_create(  # seeded by 0020
        name="Service disruption",
        defaults={
            "subject": "[$status] $incident",
            "body": "Hello $tenant,\n\n$update\n\nCurrent status: $status_page\n",
        },
    )

    log_in(page, live_server, support.username, then=f"/admin/ops/incident/{incident.pk}/change/")
    panel = page.locator("#cf-panel-notifications")
    expect(panel).to_contain_text("Platform Team (chat)")
    expect(panel).to_contain_text("HTTP 500 from hooks.chat.test")
    expect(page.locator("#cf-next-page")).to_contain_text("Backup Team is paged")
    panel.scroll_into_view_if_needed()
    shoot(page, "incident-notifications-panel")

    form = page.locator("#cf-incident-customer-update-form")
    form.locator("select[name=template]").select_option(str(template.pk))
    form.locator("textarea[name=update]").fill(NEWS)
    form.scroll_into_view_if_needed()
    shoot(page, "customer-update-form", widths=(1400,))
    form.get_by_role("button", name="Preview the messages…").click()

    expect(page.locator(".cf-customer-preview").first).to_contain_text("Hello Acme Ltd,")
    expect(page.locator("#cf-customer-update-send")).to_have_text("Send to 2 tenant contacts")
    page.fill("#cf-cu-subject", "[$status] $incident — update for $tenant")
    page.get_by_role("button", name="Update the preview").click()
    expect(page.locator(".cf-customer-preview").nth(1)).to_contain_text(
        "[Open] API errors for some bots — update for Beta GmbH"
    )
    shoot(page, "customer-update-compose")
    page.locator("#cf-customer-update-send").click()

    expect(page.locator(".messagelist")).to_contain_text(
        "Customer update queued for 2 tenant contacts."
    )
    for func, args in queued:  # the worker
        import_string(func)(*args)
    assert sorted(message["To"] for message in smtp_server.messages) == [
        "it@beta.test",
        "ops@acme.test",
    ]
    assert all(STACK_SECRET not in raw and "pool exhausted" not in raw for raw in smtp_server.raw)
    page.reload()
    expect(panel.locator("tr[data-status=sent]", has_text="Acme Ltd")).to_be_visible()
    expect(page.locator("#cf-timeline")).to_contain_text("Customer update sent to 2 tenants")
    panel.scroll_into_view_if_needed()
    shoot(page, "incident-notifications-after-update")
