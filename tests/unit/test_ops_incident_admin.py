"""Incidents in the admin: the add form and its prefill, the incident page and its work
buttons, edits, ordering, no deletion; the dashboard's and the stack page's links; the roles'
incident permissions. The actions' functions are tested in test_ops_incident_actions.py.

Nothing runs remotely: checklist probes are only queued (ORM broker), never run.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from cfadmin.models import AuditAction, AuditEvent
from cfadmin.roles import ADMIN, OPERATOR, SUPPORT, VIEWER, role_permissions
from ops import incidents
from ops.models import (
    ChecklistRun,
    Incident,
    IncidentEventKind,
    IncidentStatus,
    Outage,
    Severity,
)
from ops.procedures import DAILY_HEALTH_CHECK, POST_DEPLOY
from tests.unit.incident_helpers import (
    ADD,
    CHANGELIST,
    DASHBOARD,
    WORK_FORMS,
    change_url,
    contact,
    events,
    login,
    make_incident,
    messages_of,
    page,
    procedure,
    select_value,
    timeline_rows,
    utc,
    work_url,
)

# --- the admin: opening an incident -----------------------------------------------------------


@pytest.mark.django_db
def test_support_opens_an_incident_through_the_add_form(client, support, make_stack):
    stack = make_stack()
    outage = Outage.objects.create(check_name="pocketbase", started_at=utc(2024, 5, 1, 10, 0))
    login(client, support)
    response = client.post(
        ADD,
        {
            "title": "PocketBase unreachable",
            "severity": "sev1",
            "escalation": contact("Platform Down").pk,
            "owner": support.pk,
            "summary": "Agents cannot log in",
            "tenants": [stack.tenant.pk],
            "stacks": [stack.pk],
            "outages": [outage.pk],
        },
    )
    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == change_url(incident)
    assert (incident.status, incident.opened_by, incident.owner) == ("open", support, support)
    assert incident.response_due_at == incident.opened_at + timedelta(minutes=30)
    assert list(incident.outages.all()) == [outage]
    assert AuditEvent.objects.filter(
        action=AuditAction.CREATE, target_id=str(incident.pk), actor=support
    ).exists()

    response = client.get(change_url(incident))
    rows = timeline_rows(response)
    assert [kind for kind, _ in rows] == ["Opened"]
    assert rows[0][1].startswith("Opened: PocketBase unreachable (SEV1")
    assert "Affects tenants customer-123; stacks customer-123/customer-123-main" in rows[0][1]
    assert f"Opened incident {incident}." in messages_of(response)


@pytest.mark.django_db
def test_add_form_prefilled_from_an_outage(client, support):
    outage = Outage.objects.create(
        check_name="pocketbase", started_at=utc(2024, 5, 1, 10, 5), last_message="timed out"
    )
    login(client, support)
    html_page = page(client.get(f"{ADD}?outage={outage.pk}"))
    started = timezone.localtime(outage.started_at)
    assert f'value="pocketbase down since {started:%Y-%m-%d %H:%M}"' in html_page
    assert select_value(html_page, "severity") == ["sev1"]
    assert select_value(html_page, "escalation") == [str(contact("Platform Down").pk)]
    assert select_value(html_page, "outages") == [str(outage.pk)]
    assert select_value(html_page, "owner") == [str(support.pk)]
    assert re.search(r"<textarea[^>]*name=\"summary\"[^>]*>\s*timed out</textarea>", html_page)


@pytest.mark.django_db
def test_add_form_prefilled_from_a_stack(client, support, make_stack):
    stack = make_stack()
    login(client, support)
    html_page = page(client.get(f"{ADD}?stack={stack.pk}"))
    assert select_value(html_page, "stacks") == [str(stack.pk)]
    assert select_value(html_page, "tenants") == [str(stack.tenant.pk)]
    assert select_value(html_page, "severity") == ["sev3"]  # the model's default
    assert select_value(html_page, "outages") == []


@pytest.mark.django_db
def test_viewer_cannot_open_an_incident(client, viewer):
    login(client, viewer)
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"title": "x", "severity": "sev3"}).status_code == 403
    assert not Incident.objects.exists()


# --- the admin: the incident page and its work buttons ----------------------------------------


@pytest.mark.django_db
def test_viewer_sees_the_incident_but_no_action_forms(client, viewer, support):
    incident = make_incident(support, title="Visible to all")
    incidents.record_opened(incident, actor=support)
    login(client, viewer)
    response = client.get(change_url(incident))
    html_page = page(response)
    assert response.status_code == 200
    assert 'id="cf-incident"' in html_page and "Visible to all" in html_page
    assert [kind for kind, _ in timeline_rows(response)] == ["Opened"]
    for form_id in WORK_FORMS:
        assert form_id not in html_page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("status", {"status": "acknowledged"}),
        ("note", {"note": "hello"}),
        ("escalate", {"contact": "1"}),
        ("checklist", {"procedure": "1"}),
        ("nonsense", {}),
    ],
)
def test_viewer_gets_403_on_every_work_post(client, viewer, support, action, data):
    incident = make_incident(support)
    login(client, viewer)
    assert client.post(work_url(incident, action), data).status_code == 403
    assert Incident.objects.get(pk=incident.pk).status == "open"
    assert events(incident) == []
    assert not ChecklistRun.objects.exists()


@pytest.mark.django_db
def test_support_sees_the_forms_for_an_open_incident(client, support):
    incident = make_incident(support)
    html_page = page(login(client, support).get(change_url(incident)))
    for form_id in WORK_FORMS:
        assert form_id in html_page
    buttons = re.findall(r'<button type="submit" name="status" value="([a-z]+)"', html_page)
    assert buttons == ["acknowledged", "mitigated"]


@pytest.mark.django_db
def test_support_acknowledges(client, support):
    incident = make_incident(support, escalation=contact("Platform Down"))
    login(client, support)
    response = client.post(work_url(incident, "status"), {"status": "acknowledged"}, follow=True)
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.acknowledged_at is not None
    assert response.redirect_chain == [(change_url(incident), 302)]
    assert "Incident is now acknowledged." in messages_of(response)
    assert ("Status changed", "Open → Acknowledged") in timeline_rows(response)
    assert "responded in time" in page(response)


@pytest.mark.django_db
def test_support_adds_a_note(client, support):
    incident = make_incident(support)
    login(client, support)
    response = client.post(work_url(incident, "note"), {"note": "Logs show OOM"}, follow=True)
    assert "Note added." in messages_of(response)
    assert timeline_rows(response) == [("Note", "Logs show OOM")]
    response = client.post(work_url(incident, "note"), {"note": "  "}, follow=True)
    assert messages_of(response) == ["Nothing changed: Write the note first."]
    assert events(incident) == ["Logs show OOM"]


@pytest.mark.django_db
def test_support_records_an_escalation(client, support):
    incident = make_incident(support)
    security = contact("Security Incident")
    login(client, support)
    response = client.post(
        work_url(incident, "escalate"), {"contact": security.pk, "how": "called"}, follow=True
    )
    assert "Escalation to Security Team recorded." in messages_of(response)
    assert events(incident, IncidentEventKind.ESCALATED) == [
        "Escalated to Security Team (Security Incident, respond within 15min) — called"
    ]
    assert Incident.objects.get(pk=incident.pk).escalation == security
    response = client.post(work_url(incident, "escalate"), {"contact": ""}, follow=True)
    assert messages_of(response) == ["Nothing changed: Choose whom to escalate to."]


@pytest.mark.django_db
def test_support_resolves_only_with_a_resolution(client, support):
    incident = make_incident(support, status=IncidentStatus.ACKNOWLEDGED)
    login(client, support)
    response = client.post(
        work_url(incident, "status"), {"status": "resolved", "resolution": ""}, follow=True
    )
    assert messages_of(response) == [
        "Nothing changed: Say what fixed it before resolving the incident."
    ]
    assert Incident.objects.get(pk=incident.pk).status == "acknowledged"

    response = client.post(
        work_url(incident, "status"),
        {"status": "resolved", "resolution": "Scaled the database"},
        follow=True,
    )
    incident.refresh_from_db()
    assert (incident.status, incident.resolution) == ("resolved", "Scaled the database")
    assert "Incident is now resolved." in messages_of(response)
    html_page = page(response)
    assert "cf-incident-resolve-form" not in html_page  # nothing left to resolve
    assert re.findall(r'name="status" value="([a-z]+)"', html_page) == ["open"]  # Reopen only


@pytest.mark.django_db
def test_support_reopens_with_a_reason(client, support):
    incident = make_incident(support)
    incidents.change_status(incident, IncidentStatus.RESOLVED, actor=support, resolution="ok")
    login(client, support)
    response = client.post(work_url(incident, "status"), {"status": "open"}, follow=True)
    assert messages_of(response) == ["Nothing changed: Say why the incident is reopened."]
    assert Incident.objects.get(pk=incident.pk).status == "resolved"
    response = client.post(
        work_url(incident, "status"), {"status": "open", "note": "errors again"}, follow=True
    )
    assert Incident.objects.get(pk=incident.pk).status == "open"
    assert ("Status changed", "Resolved → Open — errors again") in timeline_rows(response)


@pytest.mark.django_db
def test_disallowed_status_through_the_admin_changes_nothing(client, support):
    incident = make_incident(support)
    login(client, support)
    response = client.post(work_url(incident, "status"), {"status": "open"}, follow=True)
    assert messages_of(response) == [
        "Nothing changed: An incident that is open cannot become open."
    ]
    assert events(incident) == []


@pytest.mark.django_db
def test_unknown_action_is_404_and_get_is_405(client, support):
    incident = make_incident(support)
    login(client, support)
    assert client.post(work_url(incident, "delete"), {}).status_code == 404
    assert client.get(work_url(incident, "note")).status_code == 405
    missing = reverse("admin:ops_incident_work", args=[incident.pk + 99, "note"])
    assert client.post(missing, {"note": "x"}).status_code == 404
    assert events(incident) == []


@pytest.mark.django_db
def test_starting_a_checklist_from_the_incident(client, support):
    incident = make_incident(support)
    daily = procedure(DAILY_HEALTH_CHECK)
    login(client, support)
    response = client.post(work_url(incident, "checklist"), {"procedure": daily.pk})
    run = ChecklistRun.objects.get(incident=incident)
    assert run.procedure == daily and run.started_by == support
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:ops_checklistrun_change", args=[run.pk])
    run_page = page(client.get(response["Location"]))
    link = re.search(r'<a href="([^"]+)" id="cf-run-incident">([^<]+)</a>', run_page)
    assert link is not None and link.groups() == (change_url(incident), str(incident))
    incident_page = client.get(change_url(incident))
    assert ("Checklist", f"Started checklist “Daily health check” (run #{run.pk})") in (
        timeline_rows(incident_page)
    )
    assert reverse("admin:ops_checklistrun_change", args=[run.pk]) in page(incident_page)


@pytest.mark.django_db
def test_validation_checklist_without_one_stack_starts_nothing(client, support):
    incident = make_incident(support)
    login(client, support)
    response = client.post(
        work_url(incident, "checklist"), {"procedure": procedure(POST_DEPLOY).pk}, follow=True
    )
    assert response.redirect_chain == [(change_url(incident), 302)]
    [message] = messages_of(response)
    assert message.startswith("Nothing changed: Post-deploy validation checks one stack")
    assert not ChecklistRun.objects.exists()
    assert events(incident) == []


@pytest.mark.django_db
def test_editing_the_incident_adds_a_details_changed_event(client, support, make_stack):
    stack = make_stack()
    incident = make_incident(support, title="Slow", severity=Severity.SEV3, owner=support)
    login(client, support)
    response = client.post(
        change_url(incident),
        {
            "title": "Slow",
            "severity": "sev2",
            "escalation": "",
            "owner": support.pk,
            "summary": "",
            "stacks": [stack.pk],
        },
    )
    assert response.status_code == 302
    assert events(incident, IncidentEventKind.CHANGED) == [
        "Severity: SEV3 → SEV2; linked stack customer-123/customer-123-main"
    ]
    rows = timeline_rows(client.get(change_url(incident)))
    assert rows[-1][0] == "Details changed"
    update = AuditEvent.objects.filter(action=AuditAction.UPDATE, target_id=str(incident.pk))
    assert update.exists()


@pytest.mark.django_db
def test_changing_the_issue_type_in_the_form_moves_the_target(client, support):
    incident = make_incident(support, escalation=contact("Customer Data Loss"), owner=support)
    Incident.objects.filter(pk=incident.pk).update(opened_at=utc(2024, 5, 1, 10, 0))
    login(client, support)
    client.post(
        change_url(incident),
        {
            "title": incident.title,
            "severity": incident.severity,
            "escalation": contact("Platform Down").pk,
            "owner": support.pk,
            "summary": "",
        },
    )
    due = Incident.objects.get(pk=incident.pk).response_due_at
    assert timezone.now() < due <= timezone.now() + timedelta(minutes=30)


@pytest.mark.django_db
def test_a_form_save_keeps_a_status_changed_meanwhile(client, support):
    """The form was loaded while open; someone acknowledged in another tab; the save keeps it."""
    incident = make_incident(support, owner=support)
    login(client, support)
    client.get(change_url(incident))
    incidents.change_status(incident, IncidentStatus.ACKNOWLEDGED, actor=support)
    client.post(
        change_url(incident),
        {"title": "Renamed", "severity": incident.severity, "owner": support.pk, "summary": ""},
    )
    saved = Incident.objects.get(pk=incident.pk)
    assert (saved.title, saved.status) == ("Renamed", IncidentStatus.ACKNOWLEDGED)
    assert saved.acknowledged_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "data"),
    [("escalate", {"contact": "abc"}), ("checklist", {"procedure": "1; drop"})],
)
def test_malformed_ids_in_incident_actions_are_refused_not_500(client, support, action, data):
    incident = make_incident(support)
    login(client, support)
    response = client.post(
        reverse("admin:ops_incident_work", args=[incident.pk, action]), data, follow=True
    )
    assert response.status_code == 200
    assert "Nothing changed: Choose" in response.content.decode()
    assert (
        client.post(
            reverse("admin:ops_incident_work", args=["abc", "note"]), {"note": "x"}
        ).status_code
        == 404
    )


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["support", "admin_role", "superuser"])
def test_nobody_deletes_an_incident(client, request, persona):
    user = request.getfixturevalue(persona)
    incident = make_incident(user)
    login(client, user)
    delete = reverse("admin:ops_incident_delete", args=[incident.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    changelist = page(client.get(CHANGELIST))
    assert "delete_selected" not in changelist
    assert Incident.objects.filter(pk=incident.pk).exists()


@pytest.mark.django_db
def test_changelist_lists_unresolved_before_resolved(client, support):
    old_open = make_incident(support, title="old open")
    resolved = make_incident(support, title="new resolved", status=IncidentStatus.RESOLVED)
    new_open = make_incident(support, title="new open", status=IncidentStatus.MITIGATED)
    now = timezone.now()
    for incident, age in ((old_open, 3), (resolved, 1), (new_open, 2)):
        Incident.objects.filter(pk=incident.pk).update(opened_at=now - timedelta(hours=age))
    response = login(client, support).get(CHANGELIST)
    assert list(response.context["cl"].result_list) == [new_open, old_open, resolved]
    html_page = page(response)
    positions = [html_page.index(f">{incident}</a>") for incident in (new_open, old_open, resolved)]
    assert positions == sorted(positions)


# --- the dashboard and the stack page ---------------------------------------------------------


@pytest.mark.django_db
def test_dashboard_lists_open_incidents_and_links_outages(client, support):
    sev2 = make_incident(support, title="Disk filling", severity=Severity.SEV2)
    sev1 = make_incident(support, title="PB down", severity=Severity.SEV1)
    done = make_incident(support, title="Long gone", status=IncidentStatus.RESOLVED)
    bare = Outage.objects.create(check_name="disk_usage", started_at=utc(2024, 5, 1, 9))
    covered = Outage.objects.create(check_name="pocketbase", started_at=utc(2024, 5, 1, 8))
    sev1.outages.set([covered])
    response = login(client, support).get(DASHBOARD)
    assert [incident.pk for incident in response.context["open_incidents"]] == [sev1.pk, sev2.pk]
    html_page = page(response)
    table = re.search(r'id="cf-open-incidents".*?</table>', html_page, re.S).group(0)
    assert str(sev1) in table and str(sev2) in table and str(done) not in table

    def outage_row(outage: Outage) -> str:
        return re.search(
            rf'<tr class="cf-outage" data-outage="{outage.pk}".*?</tr>', html_page, re.S
        ).group(0)

    assert f'href="{ADD}?outage={bare.pk}">Open incident</a>' in outage_row(bare)
    assert f'href="{change_url(sev1)}">{sev1}</a>' in outage_row(covered)
    assert "Open incident" not in outage_row(covered)


@pytest.mark.django_db
def test_dashboard_offers_no_open_link_to_a_viewer(client, viewer, support):
    make_incident(support, title="Seen by viewer")
    Outage.objects.create(check_name="disk_usage", started_at=utc(2024, 5, 1, 9))
    html_page = page(login(client, viewer).get(DASHBOARD))
    assert "Seen by viewer" in html_page
    assert f"{ADD}?outage=" not in html_page
    assert "Open an incident" not in html_page


@pytest.mark.django_db
def test_stack_page_shows_its_incidents_and_an_open_link(client, support, viewer, make_stack):
    stack = make_stack()
    incident = make_incident(support, title="Stack broken", status=IncidentStatus.MITIGATED)
    incident.stacks.set([stack])
    url = reverse("admin:stacks_stack_change", args=[stack.pk])
    html_page = page(login(client, support).get(url))
    block = re.search(r'<p id="cf-stack-incidents".*?</p>', html_page, re.S).group(0)
    assert f'<a href="{change_url(incident)}">{incident}</a> (mitigated)' in block
    assert f'href="{ADD}?stack={stack.pk}"' in block

    client.logout()
    block = re.search(
        r'<p id="cf-stack-incidents".*?</p>', page(login(client, viewer).get(url)), re.S
    ).group(0)
    assert str(incident) in block and "?stack=" not in block


# --- roles ------------------------------------------------------------------------------------


def test_role_permissions_for_incidents():
    viewer, support = set(role_permissions()[VIEWER]), set(role_permissions()[SUPPORT])
    assert {"ops.view_incident", "ops.view_incidentevent"} <= viewer
    assert not {"ops.add_incident", "ops.change_incident"} & viewer
    assert {"ops.add_incident", "ops.change_incident"} <= support
    for role in (OPERATOR, ADMIN):
        assert {"ops.add_incident", "ops.change_incident"} <= set(role_permissions()[role])
    for role, names in role_permissions().items():
        assert "ops.delete_incident" not in names, role
        assert not any(name.endswith("_incidentevent") and "view" not in name for name in names)


@pytest.mark.django_db
def test_personas_hold_the_incident_permissions(viewer, support, admin_role):
    assert viewer.has_perm("ops.view_incident") and not viewer.has_perm("ops.change_incident")
    assert support.has_perm("ops.add_incident") and support.has_perm("ops.change_incident")
    assert not admin_role.has_perm("ops.delete_incident")


@pytest.mark.django_db
def test_a_linked_outage_ending_is_a_line_on_unresolved_incidents(support):
    """The check recovers: the person working the incident sees it on its timeline."""
    from ops.health import CheckOutcome, record

    def check(status: str) -> None:
        record([CheckOutcome("pocketbase", status, f"PocketBase {status}", True, {}, 5)])

    check("down")
    check("down")
    outage = Outage.objects.get(check_name="pocketbase")
    working = make_incident(support, title="PocketBase down")
    done = make_incident(support, title="Earlier", status=IncidentStatus.RESOLVED)
    working.outages.add(outage)
    done.outages.add(outage)

    check("ok")

    [line] = working.events.filter(kind=IncidentEventKind.OUTAGE)
    assert line.message.startswith("pocketbase is healthy again: its outage ended after ")
    assert line.message.endswith("(2 failed checks).")
    assert line.actor_repr == "system"
    assert not done.events.filter(kind=IncidentEventKind.OUTAGE).exists()
