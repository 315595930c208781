"""Notifications end to end (issue 16, points 2 and 3): events raised by cfadmin's own code
paths reach a real HTTP receiver (apprise json://) and a real SMTP server (aiosmtpd) on
loopback, sent by the worker's job (delivery.send_task) or its schedule (delivery.send_due).
A canary secret sits in a stack's secrets and in a channel's URL: no payload and no e-mail
ever carries it."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from cfadmin.business_hours import BusinessHours
from ops import checklists, incidents
from ops.health import CheckOutcome, record
from ops.models import (
    ChecklistItem,
    CheckStatus,
    DeliveryStatus,
    EscalationContact,
    IncidentStatus,
    ItemState,
    Notification,
    NotificationRule,
    NotifyEvent,
    RuleRecipient,
)
from ops.notifications import delivery, paging
from stacks.choices import OperationKind, OperationStatus
from stacks.models import Operation
from tests.unit.incident_helpers import ALL_DAYS, events
from tests.unit.notification_helpers import (
    add_channel,
    contact,
    default_rules,
    open_incident,
    stand_in_worker,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
CANARY = "CANARY-7c0ffee-s3cr3t"
ONCALL = "platform-oncall@example.com"


@pytest.fixture(autouse=True)
def _rules():
    default_rules()


@pytest.fixture
def worker(monkeypatch):
    return stand_in_worker(monkeypatch)


@pytest.fixture
def platform_reached(webhook_receiver, smtp_server):
    """The Platform Team on a webhook whose URL holds a password and a token, and by e-mail."""
    platform = contact("Platform Down")
    url = webhook_receiver.url(path=f"/platform/{CANARY}").replace(
        "json://", f"json://pager:{CANARY}@"
    )
    add_channel(platform, url, label="pager")
    add_channel(platform, ONCALL, label="on-call mailbox")
    return platform


def received(webhook_receiver, path_prefix: str = "") -> list[dict]:
    return [
        request.json()
        for request in webhook_receiver.requests
        if request.path.startswith(path_prefix)
    ]


def assert_no_canary(webhook_receiver, smtp_server) -> None:
    for request in webhook_receiver.requests:
        assert CANARY not in request.text
    for raw in smtp_server.raw:
        assert CANARY not in raw
    for row in Notification.objects.all():
        assert CANARY not in " ".join(
            [row.title, row.body, row.link, row.recipient_repr, row.last_error]
        )


def test_an_opened_incident_pages_the_platform_team_with_what_they_need_and_no_secret(
    support, make_stack, platform_reached, webhook_receiver, smtp_server, worker
):
    stack = make_stack("acme", secrets={"OPENAI_API_KEY": CANARY})
    incident = open_incident(support, escalation=platform_reached, stacks=[stack])
    assert webhook_receiver.requests == [] and smtp_server.messages == []  # after commit only

    assert worker.run() == [DeliveryStatus.SENT, DeliveryStatus.SENT]
    link = settings.CFADMIN_BASE_URL + reverse("admin:ops_incident_change", args=[incident.pk])
    [payload] = received(webhook_receiver, "/platform/")
    assert payload["title"] == f"[SEV1] Incident opened: #{incident.pk} Coolify API down"
    due = timezone.localtime(incident.response_due_at)
    for expected in (
        "Severity: SEV1",
        "Tenants: acme",
        "Stacks: acme/acme-main",
        f"Respond by: {due:%Y-%m-%d %H:%M %Z}",
        link,
    ):
        assert expected in payload["message"]
    [mail] = smtp_server.messages
    assert mail["To"] == ONCALL and mail["Subject"] == payload["title"]
    assert link in smtp_server.bodies()[0]
    assert_no_canary(webhook_receiver, smtp_server)


def test_an_outage_starting_and_ending_tells_the_platform_contact(
    platform_reached, webhook_receiver, smtp_server, worker
):
    record([CheckOutcome("pocketbase", CheckStatus.DOWN, "connection refused", True)])
    worker.run()
    record([CheckOutcome("pocketbase", CheckStatus.OK, "ok", True)])
    worker.run()
    assert len(received(webhook_receiver)) == 1  # a recovery is told once it has lasted
    delivery.send_due(now=timezone.now() + timedelta(minutes=16))
    titles = [payload["title"] for payload in received(webhook_receiver)]
    assert titles[0] == "Outage started: pocketbase is down"
    assert titles[1].startswith("Outage ended: pocketbase is healthy again after")
    assert "connection refused" in received(webhook_receiver)[0]["message"]
    assert [mail["Subject"] for mail in smtp_server.messages] == titles
    assert_no_canary(webhook_receiver, smtp_server)


def test_a_flapping_check_sends_one_start_and_one_end_per_channel(
    platform_reached, webhook_receiver, smtp_server, worker
):
    for _ in range(10):
        record([CheckOutcome("coolify_api", CheckStatus.DOWN, "HTTP 502", True)])
        record([CheckOutcome("coolify_api", CheckStatus.OK, "ok", True)])
        worker.run()
    # The first "started" went out; each recovery waits NOTIFY_RECOVERY_QUIET_MINUTES and the
    # next failure cancelled it; the failures after the first are its duplicates.
    assert len(webhook_receiver.requests) == 1 and len(smtp_server.messages) == 1
    delivery.send_due(now=timezone.now() + timedelta(minutes=16))  # the last recovery lasted
    assert len(webhook_receiver.requests) == 2 and len(smtp_server.messages) == 2
    assert webhook_receiver.requests[1].json()["title"].startswith("Outage ended")
    by_status = {
        status: Notification.objects.filter(status=status).count()
        for status in (DeliveryStatus.SENT, DeliveryStatus.SUPPRESSED, DeliveryStatus.CANCELLED)
    }
    assert by_status == {
        DeliveryStatus.SENT: 4,
        DeliveryStatus.SUPPRESSED: 18,
        DeliveryStatus.CANCELLED: 18,
    }


def test_a_check_that_fails_again_after_a_flap_is_told_as_down(
    platform_reached, webhook_receiver, smtp_server, worker
):
    record([CheckOutcome("coolify_api", CheckStatus.DOWN, "HTTP 502", True)])
    record([CheckOutcome("coolify_api", CheckStatus.OK, "ok", True)])
    record([CheckOutcome("coolify_api", CheckStatus.DOWN, "HTTP 502", True)])
    worker.run()
    delivery.send_due(now=timezone.now() + timedelta(minutes=16))
    # Only "started": the recovery did not last, so nobody was told the check is healthy.
    titles = [r.json()["title"] for r in webhook_receiver.requests]
    assert len(titles) == 1 and titles[0].startswith("Outage started")

    # A recovery that lasts is told, and a failure after it is told again.
    record([CheckOutcome("coolify_api", CheckStatus.OK, "ok", True)])
    delivery.send_due(now=timezone.now() + timedelta(minutes=16))
    record([CheckOutcome("coolify_api", CheckStatus.DOWN, "HTTP 502", True)])
    worker.run()
    titles = [r.json()["title"] for r in webhook_receiver.requests]
    assert len(titles) == 3 and titles[2] == titles[0]


def test_a_failed_operation_reaches_the_requesters_personal_channel(
    make_stack, operator, support, webhook_receiver, smtp_server, worker
):
    add_channel(operator, webhook_receiver.url(path="/operator"))
    add_channel(support, webhook_receiver.url(path="/support"))
    stack = make_stack("acme", secrets={"DB_PASSWORD": CANARY})
    failed = Operation.objects.create(
        stack=stack,
        kind=OperationKind.DEPLOY,
        status=OperationStatus.FAILED,
        requested_by=operator,
        requested_by_repr="operator",
        error=f"Step 'create_service' failed: 422 {CANARY}",
        result={"ok": False, "error": {"step": "create_service", "message": CANARY}},
    )
    import_string(settings.OPERATION_FAILURE_HOOKS[0])(failed)  # as the runner calls it
    worker.run()
    [payload] = received(webhook_receiver, "/operator")
    assert payload["title"] == "Deploy of acme/acme-main failed at step create_service"
    assert reverse("admin:stacks_operation_change", args=[failed.pk]) in payload["message"]
    assert received(webhook_receiver, "/support") == []
    assert_no_canary(webhook_receiver, smtp_server)


def test_a_failed_automatic_check_of_a_validation_run_reaches_the_deployer(
    make_stack, operator, webhook_receiver, smtp_server, worker, closed_port, settings
):
    settings.POCKETBASE_URL = settings.COOLIFY_URL = f"http://127.0.0.1:{closed_port}"
    add_channel(operator, webhook_receiver.url(path="/operator"))
    stack = make_stack("acme")  # never reached Coolify: no service uuid
    deploy = Operation.objects.create(
        stack=stack,
        kind=OperationKind.DEPLOY,
        status=OperationStatus.SUCCEEDED,
        requested_by=operator,
        requested_by_repr="operator",
        finished_at=timezone.now(),
    )
    run = checklists.open_validation_run(deploy)  # the success hook: opens and probes it
    assert ChecklistItem.objects.filter(run=run, state=ItemState.FAILED).exists()
    worker.run()
    [payload] = received(webhook_receiver, "/operator")
    assert payload["title"] == "Post-deploy validation failed for acme/acme-main"
    assert "Service appears in Coolify and is healthy" in payload["message"]
    assert reverse("admin:ops_checklistrun_change", args=[run.pk]) in payload["message"]


def test_rules_are_data_disabling_one_stops_it_adding_one_adds_a_recipient(
    support, operator, platform_reached, webhook_receiver, smtp_server, worker
):
    NotificationRule.objects.filter(event=NotifyEvent.OUTAGE_STARTED).update(enabled=False)
    NotificationRule.objects.create(
        event=NotifyEvent.OUTAGE_STARTED, recipient=RuleRecipient.USER, user=operator
    )
    add_channel(operator, webhook_receiver.url(path="/operator"))
    record([CheckOutcome("coolify_api", CheckStatus.DOWN, "HTTP 502", True)])
    worker.run()
    assert [request.path for request in webhook_receiver.requests] == ["/operator"]
    assert smtp_server.messages == []


def test_nobody_acknowledging_pages_the_next_contact_until_someone_does(
    support, webhook_receiver, smtp_server, worker
):
    EscalationContact.objects.update(business_hours_only=False)
    for issue_type in ("Platform Down", "Security Incident", "Customer Data Loss"):
        add_channel(contact(issue_type), webhook_receiver.url(path=f"/{issue_type[:8]}"))
    incident = open_incident(support, escalation=contact("Platform Down"))
    worker.run()
    assert [r.path for r in webhook_receiver.requests] == ["/Platform"]

    # The clock reaches the respond-by time: the Security Team (priority 10) is paged.
    paging.reescalate_due(now=incident.response_due_at)
    worker.run()
    [page] = received(webhook_receiver, "/Security")
    assert page["title"].startswith("[SEV1] Not acknowledged — paging Security Team")
    assert "re-escalated to Security Team" in events(incident)[-1]

    # Its 15 minutes pass: the Backup Team next.
    incident.refresh_from_db()
    paging.reescalate_due(now=incident.next_page_at)
    worker.run()
    assert len(received(webhook_receiver, "/Customer")) == 1

    incident.refresh_from_db()
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=support)
    paging.reescalate_due(now=timezone.now() + timedelta(days=1))
    worker.run()
    assert len(webhook_receiver.requests) == 3  # nobody paged after the acknowledgement
    assert_no_canary(webhook_receiver, smtp_server)


@override_settings(BUSINESS_HOURS=BusinessHours.parse("09:00-17:00", ALL_DAYS, "UTC"))
def test_a_business_hours_contact_paged_at_night_gets_it_at_the_opening_not_before(
    support, webhook_receiver, worker
):
    add_channel(contact("Billing Issues"), webhook_receiver.url(path="/billing"))
    incident = open_incident(support, escalation=contact("Platform Down"))
    night = (timezone.now() + timedelta(days=2)).astimezone(UTC)
    night = night.replace(hour=22, minute=0, second=0, microsecond=0)
    opening = (night + timedelta(days=1)).replace(hour=9)

    paging.reescalate_due(now=night)
    held = Notification.objects.get(event=NotifyEvent.INCIDENT_REESCALATED)
    assert (held.status, held.next_attempt_at) == (DeliveryStatus.HELD, opening)
    assert f"held until {timezone.localtime(opening):%Y-%m-%d %H:%M}" in events(incident)[-1]
    assert worker.run() == []  # held rows are not queued

    assert delivery.send_due(now=night + timedelta(minutes=1)) == 0
    assert delivery.send_due(now=opening - timedelta(minutes=1)) == 0
    assert webhook_receiver.requests == []
    assert delivery.send_due(now=opening) == 1
    [page] = received(webhook_receiver, "/billing")
    assert page["title"].startswith("[SEV1] Not acknowledged — paging Billing Team")
    held.refresh_from_db()
    assert held.status == DeliveryStatus.SENT
    due = timezone.localtime(opening + timedelta(hours=4))  # its 4 business hours
    assert f"Respond by: {due:%Y-%m-%d %H:%M %Z}" in page["message"]
