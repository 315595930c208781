"""The admin role manages staff users but cannot grant superuser rights."""

from django.contrib.auth.models import User
from django.http import HttpRequest

from tests.conftest import PASSWORD


def user_form_data(user: User, **overrides) -> dict:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "is_staff": "on",
        "groups": [g.pk for g in user.groups.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-11-27",
        "date_joined_1": "00:00:00",
    }
    data.update(overrides)
    return data


def test_an_admin_role_member_cannot_make_themselves_superuser(client, admin_role):
    client.login(request=HttpRequest(), username=admin_role.username, password=PASSWORD)
    url = f"/admin/auth/user/{admin_role.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="is_superuser"' not in page.content

    response = client.post(url, user_form_data(admin_role, is_superuser="on"))

    assert response.status_code == 302
    admin_role.refresh_from_db()
    assert not admin_role.is_superuser


def test_an_admin_role_member_cannot_change_a_superuser(client, admin_role, superuser):
    client.login(request=HttpRequest(), username=admin_role.username, password=PASSWORD)
    url = f"/admin/auth/user/{superuser.pk}/change/"

    response = client.post(url, user_form_data(superuser, is_staff=""))

    assert response.status_code == 403
    superuser.refresh_from_db()
    assert superuser.is_staff


def test_a_superuser_can_still_grant_superuser(client, superuser, viewer):
    client.force_login(superuser)
    url = f"/admin/auth/user/{viewer.pk}/change/"

    response = client.post(url, user_form_data(viewer, is_superuser="on"))

    assert response.status_code == 302
    viewer.refresh_from_db()
    assert viewer.is_superuser
