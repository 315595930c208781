"""Django Q's pages (scheduled, queued, successful and failed tasks) are the admin role's
"Internals" (cfadmin.internals): listed last on the admin home, refused to everyone else."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

INTERNAL_PAGES = [
    "admin:django_q_schedule_changelist",
    "admin:django_q_success_changelist",
    "admin:django_q_failure_changelist",
    "admin:django_q_ormq_changelist",
]


def login(client: Client, user: User) -> Client:
    assert client.login(request=HttpRequest(), username=user.username, password=PASSWORD)
    return client


def section_names(content: str) -> list[str]:
    """The app sections of the admin home, in order."""
    app_list = content[content.index('id="content-main"') :]
    return re.findall(r'<caption>\s*<a [^>]*class="section"[^>]*>([^<]+)</a>', app_list)


@pytest.mark.parametrize("persona", ["viewer", "support", "operator"])
def test_internals_are_hidden_from_everyone_below_the_admin_role(client, persona, request):
    user = request.getfixturevalue(persona)
    login(client, user)

    home = client.get(reverse("admin:index")).content.decode()
    assert "Internals" not in section_names(home)
    assert "Django Q" not in home and "Scheduled tasks" not in home
    for name in INTERNAL_PAGES:
        assert client.get(reverse(name)).status_code == 403, name


@pytest.mark.parametrize("persona", ["admin_role", "superuser"])
def test_internals_are_the_last_section_for_the_admin_role(client, persona, request):
    login(client, request.getfixturevalue(persona))

    home = client.get(reverse("admin:index")).content.decode()
    sections = section_names(home)
    assert sections[-1] == "Internals"
    assert "Django Q" not in sections
    for name in INTERNAL_PAGES:
        assert client.get(reverse(name)).status_code == 200, name


def test_the_admin_role_reads_internals_but_does_not_change_them(client, admin_role):
    from django_q.models import Schedule

    schedule = Schedule.objects.create(func="math.floor", name="floor")
    login(client, admin_role)

    page = client.get(reverse("admin:django_q_schedule_change", args=[schedule.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    listing = client.get(reverse("admin:django_q_failure_changelist")).content.decode()
    assert "Resubmit" not in listing  # it would queue around cfadmin.jobs.enqueue
    response = client.post(
        reverse("admin:django_q_schedule_change", args=[schedule.pk]),
        {"func": "os.system", "name": "evil", "schedule_type": "O", "repeats": "-1"},
    )
    assert response.status_code == 403
    schedule.refresh_from_db()
    assert schedule.func == "math.floor"
