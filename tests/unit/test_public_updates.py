"""Posting a public update from an incident's page (ops.response.public_updates, rules in
ops.status_page.updates): the first one needs a public title and puts the incident on the
status page; every one needs a message and a known status, and errors name the field; a line
goes on the internal timeline; only those who may add public updates can."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import ValidationError
from django.urls import reverse

from cfadmin.models import AuditEvent
from ops import incidents
from ops.models import Incident, IncidentEvent, PublicStatus, PublicUpdate, Severity
from ops.status_page.updates import post_update
from tests.conftest import PASSWORD


@pytest.fixture
def incident(support) -> Incident:
    incident = Incident(title="Coolify down (internal)", severity=Severity.SEV1)
    incidents.prepare_new(incident, actor=support)
    incident.save()
    return incident


def post(client, incident: Incident, **form: str):
    return client.post(
        reverse("admin:ops_incident_work", args=[incident.pk, "public_update"]), form, follow=True
    )


def page(client, incident: Incident) -> str:
    return client.get(reverse("admin:ops_incident_change", args=[incident.pk])).content.decode()


@pytest.mark.django_db
def test_the_first_update_puts_the_incident_on_the_status_page_under_its_public_title(
    client, support, incident
):
    client.force_login(support)
    before = page(client, incident)
    assert 'id="cf-incident-public-update-form"' in before
    assert "Not on the public status page" in before

    response = post(
        client,
        incident,
        status=PublicStatus.INVESTIGATING,
        message="Some agent stacks do not answer; we are looking into it.",
        public_title="Agent stacks unreachable",
    )

    assert response.status_code == 200
    assert "Public update posted (Investigating)" in response.content.decode()
    incident.refresh_from_db()
    assert incident.public and incident.public_title == "Agent stacks unreachable"
    [update] = PublicUpdate.objects.filter(incident=incident)
    assert (update.status, update.posted_by, update.posted_by_repr) == (
        PublicStatus.INVESTIGATING,
        support,
        support.username,
    )
    line = IncidentEvent.objects.filter(incident=incident).latest("at", "id")
    assert line.message == (
        "On the status page as “Agent stacks unreachable”. Public update posted "
        "(Investigating): Some agent stacks do not answer; we are looking into it."
    )
    assert line.actor == support
    assert AuditEvent.objects.filter(
        target_id=str(incident.pk), message__startswith="On the status page"
    ).exists()
    after = page(client, incident)
    assert 'On the <a href="/status/#incident-' in after
    assert "Some agent stacks do not answer" in after  # the panel lists it


@pytest.mark.django_db
def test_later_updates_need_no_title_and_can_rename_it(support, incident):
    post_update(incident, PublicStatus.INVESTIGATING, "Looking.", "Stacks down", actor=support)
    post_update(incident, PublicStatus.IDENTIFIED, "Found it.", actor=support)
    post_update(incident, PublicStatus.MONITORING, "Fixed.", "Stacks were down", actor=support)

    incident.refresh_from_db()
    assert incident.public_title == "Stacks were down"
    assert list(incident.public_updates.values_list("message", flat=True)) == [
        "Fixed.",
        "Found it.",
        "Looking.",
    ]
    messages = list(incident.events.order_by("at", "id").values_list("message", flat=True))
    assert messages[-2] == "Public update posted (Identified): Found it."
    assert messages[-1] == (
        "Public title now “Stacks were down”. Public update posted (Monitoring): Fixed."
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        (
            {"status": "investigating", "message": "  ", "public_title": "Down"},
            "message",
            "Message: required",
        ),
        (
            {"status": "investigating", "message": "We look.", "public_title": ""},
            "public_title",
            "Public title: required the first time",
        ),
        (
            {"status": "fine", "message": "We look.", "public_title": "Down"},
            "status",
            "Status: choose one of Investigating, Identified, Monitoring, Resolved.",
        ),
        (
            {"status": "investigating", "message": "x" * 5001, "public_title": "Down"},
            "message",
            "Message: keep it under 5000 characters.",
        ),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    client, support, incident, form, field, words
):
    with pytest.raises(ValidationError) as raised:
        post_update(incident, form["status"], form["message"], form["public_title"], actor=support)
    assert field in raised.value.message_dict
    assert raised.value.message_dict[field][0].startswith(words)

    client.force_login(support)
    events = incident.events.count()
    response = post(client, incident, **form)

    text = response.content.decode()
    assert "Nothing changed: " in text and words in text
    incident.refresh_from_db()
    assert not incident.public and incident.public_title == ""
    assert not PublicUpdate.objects.exists()
    assert incident.events.count() == events


@pytest.mark.django_db
def test_both_missing_names_both_fields(support, incident):
    with pytest.raises(ValidationError) as raised:
        post_update(incident, PublicStatus.INVESTIGATING, "", "", actor=support)
    assert set(raised.value.message_dict) == {"message", "public_title"}


@pytest.mark.django_db
def test_a_viewer_may_not_post_and_sees_no_form(client, viewer, support, incident):
    client.force_login(viewer)
    assert 'id="cf-incident-public-update-form"' not in page(client, incident)

    response = client.post(
        reverse("admin:ops_incident_work", args=[incident.pk, "public_update"]),
        {"status": "investigating", "message": "Hi", "public_title": "Down"},
    )

    assert response.status_code == 403
    assert not PublicUpdate.objects.exists()


@pytest.mark.django_db
def test_working_incidents_is_not_enough_without_the_public_update_permission(client, incident):
    group = Group.objects.create(name="incident workers only")
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="ops", codename__in=["view_incident", "change_incident"]
        )
    )
    user = User.objects.create_user("worker", password=PASSWORD, is_staff=True)
    user.groups.add(group)
    client.force_login(user)
    assert 'id="cf-incident-public-update-form"' not in page(client, incident)

    response = client.post(
        reverse("admin:ops_incident_work", args=[incident.pk, "public_update"]),
        {"status": "investigating", "message": "Hi", "public_title": "Down"},
    )

    assert response.status_code == 403
    assert not PublicUpdate.objects.exists()
