"""Users and roles in the admin: a "Roles" column on the user list, and the role set by one
"Role" choice on the add page and the change page (cfadmin.role_forms, cfadmin.roles), audited."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth.models import Group, User
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from cfadmin.models import AuditAction, AuditEvent
from cfadmin.roles import ADMIN, OPERATOR, SUPPORT, VIEWER, assign_role, holds_role
from tests.conftest import PASSWORD

USERS = reverse("admin:auth_user_changelist")
ADD_USER = reverse("admin:auth_user_add")


def login(client: Client, user: User) -> Client:
    assert client.login(request=HttpRequest(), username=user.username, password=PASSWORD)
    return client


def change_url(user: User) -> str:
    return reverse("admin:auth_user_change", args=[user.pk])


def change_data(user: User, **overrides) -> dict:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "is_staff": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-11-27",
        "date_joined_1": "00:00:00",
    }
    data.update(overrides)
    return data


def group_names(user: User) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def roles_cells(response) -> dict[str, str]:
    """{username: the Roles column's text} of the user list."""
    cells = {}
    for row in re.findall(r"<tr>(.*?)</tr>", response.content.decode(), re.S):
        name = re.search(r'<th class="field-username">.*?>([^<]+)</a>', row, re.S)
        roles = re.search(r'<td class="field-roles_column">(.*?)</td>', row, re.S)
        if name and roles:
            cells[name.group(1)] = unescape(roles.group(1)).strip()
    return cells


def test_the_user_list_has_a_roles_column(client, admin_role, viewer, operator, superuser):
    response = login(client, admin_role).get(USERS)

    assert response.status_code == 200
    assert ">Roles<" in response.content.decode()
    assert roles_cells(response) == {
        ADMIN: ADMIN,
        VIEWER: VIEWER,
        OPERATOR: OPERATOR,
        "root": "superuser",
    }


def test_the_roles_column_costs_one_query_whatever_the_users(
    client, admin_role, django_assert_max_num_queries
):
    login(client, admin_role)
    for i in range(3):
        assign_role(User.objects.create_user(username=f"u{i}", password=PASSWORD), SUPPORT)
    with django_assert_max_num_queries(30) as few:
        client.get(USERS)
    for i in range(3, 30):
        assign_role(User.objects.create_user(username=f"u{i}", password=PASSWORD), SUPPORT)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(USERS)
    assert list(roles_cells(response).values()).count(SUPPORT) == 30


def test_the_change_page_offers_one_role_choice_and_no_groups_widget(client, admin_role, viewer):
    content = login(client, admin_role).get(change_url(viewer)).content.decode()

    select = re.search(r'<select name="role"[^>]*>(.*?)</select>', content, re.S)
    assert select is not None
    options = re.findall(r'<option value="([^"]*)"( selected)?', select.group(1))
    assert [value for value, _ in options] == ["none", VIEWER, SUPPORT, OPERATOR, ADMIN]
    assert [value for value, chosen in options if chosen] == [VIEWER]
    assert 'name="groups"' not in content


def test_changing_the_role_sets_the_one_role_group_and_is_audited(client, admin_role, viewer):
    response = login(client, admin_role).post(
        change_url(viewer), change_data(viewer, role=OPERATOR)
    )

    assert response.status_code == 302
    assert group_names(viewer) == [OPERATOR]
    assert holds_role(viewer, OPERATOR)
    event = AuditEvent.objects.filter(action=AuditAction.UPDATE, target_id=str(viewer.pk)).get()
    assert event.actor == admin_role
    assert event.changes["fields"]["groups"] == [[VIEWER], [OPERATOR]]
    assert "Role" in event.message


def test_no_role_removes_the_role_groups_and_keeps_other_groups(client, admin_role, viewer):
    other = Group.objects.create(name="on-call")
    viewer.groups.add(other)
    response = login(client, admin_role).post(
        change_url(viewer), change_data(viewer, role="none", groups=[other.pk])
    )

    assert response.status_code == 302
    assert group_names(viewer) == ["on-call"]


def test_other_groups_stay_editable_beside_the_role(client, admin_role, viewer):
    Group.objects.create(name="on-call")
    content = login(client, admin_role).get(change_url(viewer)).content.decode()

    groups = re.search(r'<select name="groups"[^>]*>(.*?)</select>', content, re.S)
    assert groups is not None
    assert re.findall(r"<option [^>]*>([^<]+)</option>", groups.group(1)) == ["on-call"]


def test_a_post_without_the_role_field_keeps_the_role(client, superuser, support):
    response = login(client, superuser).post(change_url(support), change_data(support))

    assert response.status_code == 302
    assert group_names(support) == [SUPPORT]


def test_a_new_user_gets_their_role_on_the_add_page(client, admin_role):
    response = login(client, admin_role).post(
        ADD_USER,
        {
            "username": "newcomer",
            "usable_password": "true",
            "password1": "a-long-enough-passphrase-42",
            "password2": "a-long-enough-passphrase-42",
            "role": SUPPORT,
        },
    )

    assert response.status_code == 302
    newcomer = User.objects.get(username="newcomer")
    assert group_names(newcomer) == [SUPPORT]
    assert newcomer.is_staff  # a role is access to the console
    event = AuditEvent.objects.get(action=AuditAction.CREATE, target_id=str(newcomer.pk))
    assert event.changes["after"]["groups"] == [SUPPORT]
    assert event.changes["after"]["password"] != "a-long-enough-passphrase-42"


def test_the_add_page_asks_for_the_role(client, admin_role):
    content = login(client, admin_role).get(ADD_USER).content.decode()

    assert '<select name="role"' in content
    assert "the person's role" in unescape(content)


def test_an_unknown_role_is_refused_naming_the_field(client, admin_role, viewer):
    response = login(client, admin_role).post(
        change_url(viewer), change_data(viewer, role="emperor")
    )

    assert response.status_code == 200
    assert "role" in response.context["adminform"].form.errors
    assert group_names(viewer) == [VIEWER]


def test_a_superusers_page_shows_the_role_read_only_to_the_admin_role(
    client, admin_role, superuser
):
    assign_role(superuser, OPERATOR)
    content = login(client, admin_role).get(change_url(superuser)).content.decode()

    assert '<select name="role"' not in content
    assert re.search(r'field-role\b.*?<div class="readonly">operator</div>', content, re.S)


def test_assign_role_to_nothing_removes_the_roles_and_refuses_unknown_ones(viewer):
    with pytest.raises(ValueError):
        assign_role(viewer, "emperor")
    assign_role(viewer, "")
    assert group_names(viewer) == []
