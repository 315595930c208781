"""What notifies whom (issue 16, point 2): the default rules are data seeded by a migration;
each event resolves its enabled rules to the recipients' enabled channels and records one
notification per channel, with the message people need (severity, title, tenants and stacks,
respond-by, a link) and never a secret. The worker is not run here: see
tests/integration/test_notifications_end_to_end.py for real deliveries."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from ops import incidents
from ops.checklists import active_procedure, run_probes, start_run
from ops.health import CheckOutcome, record
from ops.models import (
    ChecklistItem,
    CheckStatus,
    CustomerMessageTemplate,
    DeliveryStatus,
    Incident,
    IncidentStatus,
    ItemState,
    NotificationRule,
    NotifyEvent,
    Outage,
    RuleRecipient,
    Severity,
)
from ops.notifications import events, rules
from ops.procedures import DAILY_HEALTH_CHECK, POST_DEPLOY
from stacks.choices import OperationKind, OperationStatus
from stacks.models import Operation
from tests.unit.notification_helpers import (
    SEED,
    add_channel,
    contact,
    default_rules,
    notifications,
    open_incident,
    stand_in_worker,
)

pytestmark = pytest.mark.django_db
CANARY = "CANARY-s3cr3t-7f1d"
SEND_TASK = "ops.notifications.delivery.send_task"


@pytest.fixture(autouse=True)
def _rules():
    default_rules()


@pytest.fixture
def worker(monkeypatch):
    return stand_in_worker(monkeypatch)


def operation(stack, user, *, kind=OperationKind.DEPLOY, status=OperationStatus.SUCCEEDED, **kw):
    return Operation.objects.create(
        stack=stack,
        kind=kind,
        status=status,
        requested_by=user,
        requested_by_repr=user.get_username() if user else "cfadmin",
        finished_at=kw.pop("finished_at", timezone.now()),
        **kw,
    )


# --- the rules are data -----------------------------------------------------------------------


def test_the_migration_seeds_the_default_rules_and_the_customer_template():
    seeded = {
        (rule.event, rule.recipient, rule.contact.issue_type if rule.contact_id else "")
        for rule in NotificationRule.objects.filter(enabled=True, min_severity="")
    }
    assert seeded == {
        (NotifyEvent.INCIDENT_OPENED, RuleRecipient.ISSUE_TYPE_CONTACT, ""),
        (NotifyEvent.INCIDENT_ESCALATED, RuleRecipient.ISSUE_TYPE_CONTACT, ""),
        (NotifyEvent.INCIDENT_REESCALATED, RuleRecipient.ISSUE_TYPE_CONTACT, ""),
        (NotifyEvent.OUTAGE_STARTED, RuleRecipient.CONTACT, "Platform Down"),
        (NotifyEvent.OUTAGE_ENDED, RuleRecipient.CONTACT, "Platform Down"),
        (NotifyEvent.OPERATION_FAILED, RuleRecipient.REQUESTER, ""),
        (NotifyEvent.CHECKLIST_FAILED, RuleRecipient.DEPLOYER, ""),
    }
    template = CustomerMessageTemplate.objects.get(name="Service disruption")
    for placeholder in ("$incident", "$status", "$tenant", "$update", "$status_page"):
        assert placeholder in template.subject + template.body


def test_the_seed_reverses_to_nothing_it_made_and_keeps_what_admins_added(operator):
    mine = NotificationRule.objects.create(
        event=NotifyEvent.OPERATION_FAILED, recipient=RuleRecipient.USER, user=operator
    )
    seed = importlib.import_module(SEED)
    seed.unseed(django_apps, None)
    assert list(NotificationRule.objects.all()) == [mine]
    assert not CustomerMessageTemplate.objects.filter(name="Service disruption").exists()
    seed.seed(django_apps, None)
    seed.seed(django_apps, None)  # twice: still one of each
    assert NotificationRule.objects.count() == 8


def test_outage_rules_are_not_made_without_a_platform_down_contact():
    seed = importlib.import_module(SEED)
    seed.unseed(django_apps, None)
    contact("Platform Down").delete()
    seed.seed(django_apps, None)
    events_seeded = set(NotificationRule.objects.values_list("event", flat=True))
    assert NotifyEvent.OUTAGE_STARTED not in events_seeded
    assert NotifyEvent.INCIDENT_OPENED in events_seeded


# --- incidents ----------------------------------------------------------------------------------


def test_an_opened_incident_pages_its_issue_types_contact_on_its_enabled_channels(
    support, make_stack, worker
):
    platform = contact("Platform Down")
    hook = add_channel(platform, "json://127.0.0.1:9/platform")
    add_channel(platform, "json://127.0.0.1:9/switched-off", enabled=False)
    add_channel(contact("Security Incident"), "json://127.0.0.1:9/security")
    stack = make_stack("acme")
    incident = open_incident(support, escalation=platform, stacks=[stack])

    [row] = notifications()
    assert (row.event, row.channel, row.incident, row.status) == (
        NotifyEvent.INCIDENT_OPENED,
        hook,
        incident,
        DeliveryStatus.PENDING,
    )
    assert row.rule.recipient == RuleRecipient.ISSUE_TYPE_CONTACT
    assert row.dedupe_key == f"incident_opened:incident:{incident.pk}"
    link = settings.CFADMIN_BASE_URL + reverse("admin:ops_incident_change", args=[incident.pk])
    assert row.link == link  # the channel sends it under the body
    assert row.title == f"[SEV1] Incident opened: #{incident.pk} Coolify API down"
    due = timezone.localtime(incident.response_due_at)
    assert f"Respond by: {due:%Y-%m-%d %H:%M %Z}" in row.body
    assert "Tenants: acme" in row.body and "Stacks: acme/acme-main" in row.body
    assert "Platform Down → Platform Team (respond within 30min)" in row.body
    assert row.recipient_repr.startswith("Platform Team — ")
    # Sent by the worker after commit, never in the request.
    assert worker.queued == [(SEND_TASK, (row.pk,))]


def test_a_message_names_ten_tenants_and_stacks_then_says_how_many_more(support, make_stack):
    platform = contact("Platform Down")
    add_channel(platform, "json://127.0.0.1:9/platform")
    stacks = [make_stack(f"tenant-{n:02d}") for n in range(12)]
    open_incident(support, escalation=platform, stacks=stacks)
    [row] = notifications()
    assert "tenant-09 and 2 more" in row.body
    assert "tenant-09/tenant-09-main and 2 more" in row.body
    assert "tenant-10" not in row.body


def test_no_secret_reaches_a_message(support, make_stack, operator):
    platform = contact("Platform Down")
    add_channel(platform, f"json://user:{CANARY}@127.0.0.1:9/hook-{CANARY}")
    add_channel(operator, f"json://127.0.0.1:9/{CANARY}")
    stack = make_stack("acme", secrets={"OPENAI_API_KEY": CANARY})
    open_incident(support, escalation=platform, stacks=[stack])
    failed = operation(
        stack, operator, status=OperationStatus.FAILED, error=f"Step 'x' failed: key={CANARY}"
    )
    events.operation_failed(failed)
    rows = notifications()
    assert len(rows) == 2
    for row in rows:
        for text in (row.title, row.body, row.link, row.recipient_repr, row.dedupe_key):
            assert CANARY not in text


def test_a_minimum_severity_limits_an_incident_rule(support):
    platform = contact("Platform Down")
    add_channel(platform, "json://127.0.0.1:9/platform")
    NotificationRule.objects.filter(event=NotifyEvent.INCIDENT_OPENED).update(
        min_severity=Severity.SEV2
    )
    open_incident(support, escalation=platform, severity=Severity.SEV3, title="minor")
    assert notifications() == []
    open_incident(support, escalation=platform, severity=Severity.SEV2, title="many")
    open_incident(support, escalation=platform, severity=Severity.SEV1, title="all")
    assert [row.incident.title for row in notifications()] == ["many", "all"]


def test_disabling_a_rule_stops_it_and_a_rule_for_a_user_adds_a_recipient(support, operator):
    platform = contact("Platform Down")
    add_channel(platform, "json://127.0.0.1:9/platform")
    personal = add_channel(operator, "json://127.0.0.1:9/operator")
    NotificationRule.objects.filter(event=NotifyEvent.INCIDENT_OPENED).update(enabled=False)
    open_incident(support, escalation=platform, title="quiet")
    assert notifications() == []

    NotificationRule.objects.filter(event=NotifyEvent.INCIDENT_OPENED).update(enabled=True)
    watch = NotificationRule.objects.create(
        event=NotifyEvent.INCIDENT_OPENED, recipient=RuleRecipient.USER, user=operator
    )
    open_incident(support, escalation=platform, title="loud")
    rows = notifications()
    assert [row.channel.contact_id or row.channel.user_id for row in rows] == [
        platform.pk,
        operator.pk,
    ]
    assert rows[1].channel == personal and rows[1].rule == watch
    assert rows[1].recipient_repr.startswith("operator — ")


def test_an_incident_without_an_issue_type_pages_nobody_until_escalated(support):
    backup = contact("Customer Data Loss")
    channel = add_channel(backup, "json://127.0.0.1:9/backup")
    incident = open_incident(support, escalation=None)
    assert notifications() == [] and incident.next_page_at is None

    incidents.escalate(incident, backup, actor=support, how="phoned")
    [row] = notifications()
    assert (row.event, row.channel) == (NotifyEvent.INCIDENT_ESCALATED, channel)
    assert row.title.startswith(f"[SEV1] Escalated to Backup Team: #{incident.pk}")
    incident.refresh_from_db()
    # It took the contact's issue type: paged again at its target unless acknowledged.
    assert incident.next_page_at == incident.response_due_at is not None


def test_escalating_pages_the_contact_escalated_to_not_the_issue_types(support):
    platform, security = contact("Platform Down"), contact("Security Incident")
    add_channel(platform, "json://127.0.0.1:9/platform")
    to_security = add_channel(security, "json://127.0.0.1:9/security")
    incident = open_incident(support, escalation=platform)
    first_page = Incident.objects.get(pk=incident.pk).next_page_at
    incidents.escalate(incident, security, actor=support)
    rows = notifications(event=NotifyEvent.INCIDENT_ESCALATED)
    assert [row.channel for row in rows] == [to_security]
    assert Incident.objects.get(pk=incident.pk).next_page_at == first_page


def test_responding_stops_the_pages_and_reopening_starts_them_again(support):
    platform = contact("Platform Down")
    incident = open_incident(support, escalation=platform)
    assert Incident.objects.get(pk=incident.pk).next_page_at == incident.response_due_at
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=support)
    assert Incident.objects.get(pk=incident.pk).next_page_at is None
    incidents.change_status(incident, IncidentStatus.RESOLVED, actor=support, resolution="fixed")
    before = timezone.now()
    incidents.change_status(incident, IncidentStatus.OPEN, actor=support, note="back again")
    page_at = Incident.objects.get(pk=incident.pk).next_page_at
    assert before + timedelta(minutes=30) <= page_at <= timezone.now() + timedelta(minutes=30)


# --- outages, operations, checklists ------------------------------------------------------------


def test_an_outage_starting_and_ending_tells_the_platform_contact():
    platform = contact("Platform Down")
    hook = add_channel(platform, "json://127.0.0.1:9/platform")
    record([CheckOutcome("coolify_api", CheckStatus.DOWN, "HTTP 502 from Coolify", True)])
    record([CheckOutcome("coolify_api", CheckStatus.OK, "ok", True)])
    started, ended = notifications()
    assert (started.event, started.channel, started.dedupe_key) == (
        NotifyEvent.OUTAGE_STARTED,
        hook,
        "outage_started:outage:coolify_api",
    )
    assert started.title == "Outage started: coolify_api is down"
    assert "HTTP 502 from Coolify" in started.body
    outage = Outage.objects.get()
    assert started.link == settings.CFADMIN_BASE_URL + reverse(
        "admin:ops_outage_change", args=[outage.pk]
    )
    assert ended.event == NotifyEvent.OUTAGE_ENDED and ended.title.startswith(
        "Outage ended: coolify_api is healthy again after"
    )


def test_a_failed_operation_tells_the_operator_who_requested_it(make_stack, operator, support):
    mine = add_channel(operator, "json://127.0.0.1:9/operator")
    add_channel(support, "json://127.0.0.1:9/support")
    stack = make_stack("acme")
    failed = operation(
        stack,
        operator,
        status=OperationStatus.FAILED,
        result={"ok": False, "error": {"step": "create_service", "message": "boom"}},
    )
    import_string(settings.OPERATION_FAILURE_HOOKS[0])(failed)  # as the runner calls it
    [row] = notifications()
    assert (row.event, row.channel) == (NotifyEvent.OPERATION_FAILED, mine)
    assert row.title == "Deploy of acme/acme-main failed at step create_service"
    assert row.link.endswith(reverse("admin:stacks_operation_change", args=[failed.pk]))

    operator.is_active = False  # a disabled account is told nothing
    operator.save()
    events.operation_failed(operation(stack, operator, status=OperationStatus.FAILED))
    assert len(notifications()) == 1


def test_the_deployer_is_who_requested_the_latest_succeeded_deploy(
    make_stack, operator, support, admin_role
):
    stack = make_stack("acme")
    now = timezone.now()
    operation(stack, admin_role, finished_at=now - timedelta(days=2))
    operation(stack, operator, finished_at=now - timedelta(days=1))
    operation(stack, support, status=OperationStatus.FAILED, finished_at=now)
    operation(stack, support, kind=OperationKind.RESTART, finished_at=now)
    assert rules.deployer(stack) == operator
    assert rules.deployer(make_stack("other")) is None


def _failing_probes(monkeypatch, failing: set[str]):
    monkeypatch.setattr(
        "ops.probes.run_probe", lambda name, run: (name not in failing, {"probe": name})
    )


def test_a_validation_run_with_a_failed_automatic_check_tells_the_deployer_once(
    make_stack, operator, support, monkeypatch
):
    mine = add_channel(operator, "json://127.0.0.1:9/operator")
    stack = make_stack("acme")
    deploy = operation(stack, operator)
    run = start_run(active_procedure(POST_DEPLOY), actor=None, stack=stack)
    run.operation = deploy
    run.save(update_fields=["operation"])
    _failing_probes(monkeypatch, {"domain_resolves"})
    run_probes(run)
    [row] = notifications()
    assert (row.event, row.channel) == (NotifyEvent.CHECKLIST_FAILED, mine)
    assert row.title == "Post-deploy validation failed for acme/acme-main"
    assert "- Domain resolves" in row.body
    assert row.link.endswith(reverse("admin:ops_checklistrun_change", args=[run.pk]))
    run_probes(run)  # a person asks for the checks again: still failing, told once
    assert len(notifications()) == 1


def test_passed_checks_and_other_procedures_tell_nobody(make_stack, operator, monkeypatch):
    add_channel(operator, "json://127.0.0.1:9/operator")
    stack = make_stack("acme")
    operation(stack, operator)
    _failing_probes(monkeypatch, set())
    run_probes(start_run(active_procedure(POST_DEPLOY), actor=None, stack=stack))
    daily = start_run(active_procedure(DAILY_HEALTH_CHECK), actor=None, stack=stack)
    ChecklistItem.objects.filter(run=daily).exclude(step__probe="").update(state=ItemState.FAILED)
    assert events.checklist_failed(daily) == []
    assert notifications() == []
