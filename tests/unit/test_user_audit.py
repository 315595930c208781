"""Every change to a staff account is in the audit trail: creation, field changes with old and
new values, roles (groups) and permissions, password changes (that it happened, never the
password or its hash), and a role's own permissions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command

from cfadmin.models import AuditAction, AuditEvent
from cfadmin.roles import OPERATOR, SUPPORT, VIEWER
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

USERS = "/admin/auth/user/"
NEW_PASSWORD = "a-new-Staff-passphrase-42"


def user_form(user: User, **overrides) -> dict:
    """The change form as the admin posts it back (date joined: as the form shows it)."""
    User.objects.filter(pk=user.pk).update(date_joined=datetime(2026, 11, 27, tzinfo=UTC))
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "groups": [g.pk for g in user.groups.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-11-27",
        "date_joined_1": "00:00:00",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value != ""}


def trail_text() -> str:
    return json.dumps(
        [[e.message, e.target_repr, e.changes] for e in AuditEvent.objects.all()],
        ensure_ascii=False,
    )


def test_a_role_change_is_audited_with_the_old_and_new_groups(client, admin_role, viewer):
    client.force_login(admin_role)

    response = client.post(
        f"{USERS}{viewer.pk}/change/",
        user_form(viewer, role=OPERATOR, email="v@example.com", first_name="Vera"),
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action=AuditAction.UPDATE, target_id=str(viewer.pk))
    assert event.actor == admin_role
    assert event.changes["fields"] == {
        "email": ["", "v@example.com"],
        "first_name": ["", "Vera"],
        "groups": [[VIEWER], [OPERATOR]],
    }


def test_deactivating_and_direct_permissions_are_audited(client, superuser, support):
    client.force_login(superuser)
    permission = Permission.objects.get(codename="delete_stack")

    client.post(
        f"{USERS}{support.pk}/change/",
        user_form(support, is_active="", user_permissions=[permission.pk]),
    )

    fields = AuditEvent.objects.get(action=AuditAction.UPDATE).changes["fields"]
    assert fields["is_active"] == [True, False]
    assert fields["user_permissions"] == [[], ["stacks.delete_stack"]]
    assert "groups" not in fields  # unchanged
    assert "password" not in fields


def test_creating_a_staff_user_is_audited_without_the_password(client, admin_role):
    client.force_login(admin_role)

    response = client.post(
        f"{USERS}add/",
        {
            "username": "newbie",
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302
    user = User.objects.get(username="newbie")
    event = AuditEvent.objects.get(action=AuditAction.CREATE, target_id=str(user.pk))
    assert event.actor == admin_role
    assert event.changes["after"]["username"] == "newbie"
    assert event.changes["after"]["groups"] == []
    assert event.changes["after"]["password"] == "••••"
    # Creating the user with a password is its creation, not a password change.
    assert not AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGED).exists()
    text = trail_text()
    assert NEW_PASSWORD not in text and user.password not in text


def test_an_admin_setting_a_password_is_recorded_without_the_password_or_hash(
    client, admin_role, viewer
):
    client.force_login(admin_role)
    old_hash = viewer.password

    response = client.post(
        f"{USERS}{viewer.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    viewer.refresh_from_db()
    assert viewer.check_password(NEW_PASSWORD)
    events = AuditEvent.objects.filter(target_id=str(viewer.pk))
    assert [e.action for e in events] == [AuditAction.PASSWORD_CHANGED]
    event = events.get()
    assert (event.actor, event.message) == (admin_role, "Password changed for viewer")
    assert event.address == "127.0.0.1"
    text = trail_text()
    for secret in (NEW_PASSWORD, viewer.password, old_hash, "pbkdf2"):
        assert secret not in text


def test_changing_ones_own_password_is_recorded(client, support):
    client.force_login(support)

    response = client.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action=AuditAction.PASSWORD_CHANGED)
    assert (event.actor, event.message) == (support, "support changed their own password")
    assert NEW_PASSWORD not in trail_text()


def test_a_password_changed_from_the_shell_or_disabled_is_recorded(viewer, support):
    viewer.set_password(NEW_PASSWORD)
    viewer.save()
    support.set_unusable_password()
    support.save()

    messages = list(
        AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGED)
        .order_by("id")
        .values_list("actor_repr", "message")
    )
    assert messages == [
        ("system", "Password changed for viewer"),
        ("system", "Password login disabled for support"),
    ]


def test_saving_a_user_without_touching_the_password_records_no_password_change(viewer):
    viewer.first_name = "Vera"
    viewer.save()
    viewer.refresh_from_db()
    viewer.save(update_fields=["last_login"])
    # Django re-hashing the same password (a newer hasher, at login) is not a change either.
    viewer.password = "x" + viewer.password
    viewer._password = None
    viewer.save(update_fields=["password"])

    assert not AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGED).exists()


def test_a_roles_permission_change_is_audited(client, superuser):
    client.force_login(superuser)
    support = Group.objects.get(name=SUPPORT)
    before = sorted(support.permissions.values_list("pk", flat=True))
    added = Permission.objects.get(codename="deploy_stack")

    response = client.post(
        f"/admin/auth/group/{support.pk}/change/",
        {"name": SUPPORT, "permissions": [*before, added.pk]},
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action=AuditAction.UPDATE, target_id=str(support.pk))
    old, new = event.changes["fields"]["permissions"]
    assert set(new) - set(old) == {"stacks.deploy_stack"}
    assert "stacks.dry_run_stack" in old


def test_ensure_admin_says_whether_a_second_factor_is_needed(settings, capsys):
    settings.MFA_ENFORCED = False
    call_command("ensure_admin")
    out = capsys.readouterr().out
    assert "Admin login created: user 'admin'" in out
    assert "Second factor: not enforced" in out
    settings.MFA_ENFORCED = True
    call_command("ensure_admin")
    assert "Second factor: required (MFA_ENFORCED)" in capsys.readouterr().out
