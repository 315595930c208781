"""The incident page's actions (ops.incident_actions): each action's function on its own, the
one table of actions and the permissions they need, refusals through the view, and the
incident form's save (ops.incidents.open_incident / edit_incident) without the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.urls import reverse

from cfadmin.models import AuditAction, AuditEvent
from ops import incident_actions, incidents
from ops.incident_actions import ACTIONS, Outcome
from ops.models import (
    ChecklistRun,
    EscalationContact,
    Incident,
    IncidentEvent,
    IncidentEventKind,
    IncidentStatus,
    Procedure,
    ProcedureCategory,
    Severity,
)
from ops.permissions import ADD_CHECKLISTRUN, CHANGE_INCIDENT, may
from ops.procedures import DAILY_HEALTH_CHECK
from tests.conftest import PASSWORD


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    calls: list[tuple] = []
    monkeypatch.setattr("cfadmin.jobs.enqueue", lambda func, *args: calls.append((func, *args)))
    return calls


def new_incident(actor, **fields) -> Incident:
    incident = Incident(title=fields.pop("title", "API slow"), **fields)
    incidents.prepare_new(incident, actor=actor)
    incident.save()
    return incident


def timeline(incident: Incident) -> list[tuple[str, str]]:
    return list(IncidentEvent.objects.filter(incident=incident).values_list("kind", "message"))


def work_url(incident: Incident, action: str) -> str:
    return reverse("admin:ops_incident_work", args=[incident.pk, action])


# --- the table ---------------------------------------------------------------------------------


def test_the_table_names_every_button_and_its_permissions():
    assert set(ACTIONS) == {"status", "note", "escalate", "checklist"}
    for name, action in ACTIONS.items():
        assert CHANGE_INCIDENT in action.permissions, name
    assert ACTIONS["checklist"].permissions == (CHANGE_INCIDENT, ADD_CHECKLISTRUN)


# --- each action as a function -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "form", "end", "message"),
    [
        (
            IncidentStatus.OPEN,
            {"status": "acknowledged"},
            IncidentStatus.ACKNOWLEDGED,
            "Incident is now acknowledged.",
        ),
        (
            IncidentStatus.ACKNOWLEDGED,
            {"status": "mitigated", "note": "failover"},
            IncidentStatus.MITIGATED,
            "Incident is now mitigated.",
        ),
        (
            IncidentStatus.MITIGATED,
            {"status": "resolved", "resolution": "restarted the proxy"},
            IncidentStatus.RESOLVED,
            "Incident is now resolved.",
        ),
        (
            IncidentStatus.RESOLVED,
            {"status": "open", "note": "errors again"},
            IncidentStatus.OPEN,
            "Incident is now open.",
        ),
    ],
)
def test_change_status_moves_the_incident(support, start, form, end, message):
    incident = new_incident(support)
    Incident.objects.filter(pk=incident.pk).update(status=start)
    incident.refresh_from_db()

    outcome = incident_actions.change_status(incident, form, actor=support)

    assert outcome == Outcome(message)
    assert Incident.objects.get(pk=incident.pk).status == end
    assert [kind for kind, _ in timeline(incident)] == [IncidentEventKind.STATUS]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"status": "resolved"}, "resolution"),
        ({"status": "nonsense"}, "status"),
        ({"status": "open"}, "status"),  # an open incident cannot become open
    ],
)
def test_change_status_refusals_name_the_field_and_change_nothing(support, form, field):
    incident = new_incident(support)
    with pytest.raises(ValidationError) as refused:
        incident_actions.change_status(incident, form, actor=support)
    assert list(refused.value.message_dict) == [field]
    assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.OPEN
    assert timeline(incident) == []


@pytest.mark.django_db
def test_add_note(support):
    incident = new_incident(support)
    assert incident_actions.add_note(incident, {"note": "OOM"}, actor=support) == Outcome(
        "Note added."
    )
    assert timeline(incident) == [(IncidentEventKind.NOTE, "OOM")]
    with pytest.raises(ValidationError) as refused:
        incident_actions.add_note(incident, {"note": "  "}, actor=support)
    assert list(refused.value.message_dict) == ["note"]


@pytest.mark.django_db
def test_escalate(support):
    incident = new_incident(support)
    security = EscalationContact.objects.get(issue_type="Security Incident")

    outcome = incident_actions.escalate(
        incident, {"contact": str(security.pk), "how": "called"}, actor=support
    )

    assert outcome == Outcome("Escalation to Security Team recorded.")
    assert Incident.objects.get(pk=incident.pk).escalation == security
    [(kind, message)] = timeline(incident)
    assert kind == IncidentEventKind.ESCALATED and message.endswith("— called")


@pytest.mark.django_db
@pytest.mark.parametrize("posted", ["", "abc", "999999"])
def test_escalate_to_nobody_is_refused(support, posted):
    incident = new_incident(support)
    with pytest.raises(ValidationError) as refused:
        incident_actions.escalate(incident, {"contact": posted}, actor=support)
    assert refused.value.message_dict == {"contact": ["Choose whom to escalate to."]}
    assert timeline(incident) == []


@pytest.mark.django_db
def test_start_checklist_returns_the_run_and_queues_its_checks(support, queued):
    incident = new_incident(support)
    daily = Procedure.objects.get(slug=DAILY_HEALTH_CHECK, active=True)

    outcome = incident_actions.start_checklist(
        incident, {"procedure": str(daily.pk)}, actor=support
    )

    run = ChecklistRun.objects.get()
    assert outcome == Outcome(run=run) and run.incident == incident
    assert queued == [("ops.tasks.run_checklist_probes_task", run.pk)]


@pytest.mark.django_db
@pytest.mark.parametrize("posted", ["", "1; drop", "inactive"])
def test_start_checklist_needs_an_active_procedure(support, queued, posted):
    incident = new_incident(support)
    if posted == "inactive":
        old = Procedure.objects.create(
            slug="old", title="Old", category=ProcedureCategory.MAINTENANCE, active=False
        )
        posted = str(old.pk)
    with pytest.raises(ValidationError) as refused:
        incident_actions.start_checklist(incident, {"procedure": posted}, actor=support)
    assert refused.value.message_dict == {"procedure": ["Choose a procedure to run."]}
    assert not ChecklistRun.objects.exists() and queued == []


@pytest.mark.django_db
def test_urgent_procedures_are_offered_first():
    offered = list(incident_actions.procedures_offered())
    urgent = [p.is_urgent for p in offered]
    assert urgent == sorted(urgent, reverse=True) and urgent[0]
    assert all(p.active for p in offered)


# --- permissions, through the view ---------------------------------------------------------------


@pytest.fixture
def incident_worker(db) -> User:
    """May work incidents, may not start checklist runs."""
    user = User.objects.create_user(username="worker", password=PASSWORD, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="ops", codename__in=["view_incident", "change_incident"]
        )
    )
    return User.objects.get(pk=user.pk)  # fresh: no cached permissions


@pytest.mark.django_db
def test_starting_a_checklist_needs_its_own_permission(client, incident_worker, support, queued):
    assert may(incident_worker, CHANGE_INCIDENT) and not may(incident_worker, ADD_CHECKLISTRUN)
    incident = new_incident(support)
    client.force_login(incident_worker)
    daily = Procedure.objects.get(slug=DAILY_HEALTH_CHECK, active=True)

    assert client.post(work_url(incident, "checklist"), {"procedure": daily.pk}).status_code == 403
    assert not ChecklistRun.objects.exists() and queued == []

    response = client.post(work_url(incident, "note"), {"note": "looking"})
    assert response.status_code == 302
    assert timeline(incident) == [(IncidentEventKind.NOTE, "looking")]


@pytest.mark.django_db
@pytest.mark.parametrize("action", [*ACTIONS, "nonsense"])
def test_a_viewer_is_refused_every_action(client, viewer, support, action):
    incident = new_incident(support)
    client.force_login(viewer)
    assert client.post(work_url(incident, action), {"note": "x"}).status_code == 403
    assert timeline(incident) == []


@pytest.mark.django_db
def test_an_unknown_action_or_incident_is_404(client, support):
    incident = new_incident(support)
    client.force_login(support)
    assert client.post(work_url(incident, "delete"), {}).status_code == 404
    missing = reverse("admin:ops_incident_work", args=[incident.pk + 1, "note"])
    assert client.post(missing, {"note": "x"}).status_code == 404
    assert timeline(incident) == []


@pytest.mark.django_db
def test_a_refusal_is_reported_and_changes_nothing(client, support):
    incident = new_incident(support)
    client.force_login(support)
    response = client.post(work_url(incident, "escalate"), {"contact": ""}, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "Nothing changed: Choose whom to escalate to."
    ]
    assert timeline(incident) == []


# --- the incident form's save, without the admin ------------------------------------------------


@pytest.mark.django_db
def test_open_incident_saves_links_then_writes_the_first_line(support, make_stack):
    stack = make_stack()
    incident = Incident(title="Proxy down", severity=Severity.SEV2)
    linked: list[bool] = []

    def save_links() -> None:
        linked.append(Incident.objects.filter(pk=incident.pk).exists())
        incident.stacks.add(stack)

    incidents.open_incident(incident, actor=support, save_links=save_links)

    assert linked == [True]  # saved before its links
    assert (incident.status, incident.opened_by) == (IncidentStatus.OPEN, support)
    [(kind, message)] = timeline(incident)
    assert kind == IncidentEventKind.OPENED
    assert message.startswith("Opened: Proxy down") and str(stack) in message


@pytest.mark.django_db
def test_edit_incident_saves_the_form_fields_only_and_says_what_changed(support, make_stack):
    incident = new_incident(support, severity=Severity.SEV3)
    stack = make_stack()
    # Acknowledged meanwhile, in another tab: the form's save must keep it.
    Incident.objects.filter(pk=incident.pk).update(status=IncidentStatus.ACKNOWLEDGED)
    incident.title, incident.severity = "Renamed", Severity.SEV1

    previous = incidents.edit_incident(
        incident,
        actor=support,
        fields=["title", "severity"],
        save_links=lambda: incident.stacks.add(stack),
        escalation_changed=False,
    )

    assert (previous.title, previous.severity) == ("API slow", Severity.SEV3)
    saved = Incident.objects.get(pk=incident.pk)
    assert (saved.title, saved.severity, saved.status) == (
        "Renamed",
        Severity.SEV1,
        IncidentStatus.ACKNOWLEDGED,
    )
    [(kind, message)] = timeline(incident)
    assert kind == IncidentEventKind.CHANGED
    assert message == f"Title: API slow → Renamed; severity: SEV3 → SEV1; linked stack {stack}"
    assert not AuditEvent.objects.filter(action=AuditAction.UPDATE).exists()  # the admin audits


@pytest.mark.django_db
def test_edit_incident_with_nothing_changed_adds_no_line(support):
    incident = new_incident(support)
    incidents.edit_incident(
        incident, actor=support, fields=["title"], save_links=lambda: None, escalation_changed=False
    )
    assert timeline(incident) == []
