"""Logging in: lockout after repeated failures and the admin's unlock (django-axes), login,
logout and failure in the audit trail, client addresses behind proxies, session limits and the
password rules."""

from __future__ import annotations

import json
import time

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from cfadmin.models import AuditAction, AuditEvent
from cfadmin.security import idle_timeout
from cfadmin.security.config import parse_lockout_parameters, parse_trusted_proxies
from cfadmin.security.proxies import client_address
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
ATTEMPTS = "/admin/axes/accessattempt/"
USERS = "/admin/auth/user/"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) cfadmin-test"
ADDRESS = "203.0.113.7"


def log_in(client, username: str, password: str, address: str = ADDRESS):
    return client.post(
        LOGIN,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
        HTTP_USER_AGENT=AGENT,
    )


def fail(client, username: str, times: int, address: str = ADDRESS) -> None:
    for _ in range(times):
        response = log_in(client, username, "wrong-password-123", address)
        assert response.status_code in (200, 429)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def all_audit_text() -> str:
    return "\n".join(
        f"{e.message} {e.target_repr} {json.dumps(e.changes)}" for e in AuditEvent.objects.all()
    )


# --- lockout -----------------------------------------------------------------------------------


def test_five_failures_lock_the_user_out_even_with_the_right_password(client, operator):
    fail(client, "operator", 4)
    assert log_in(client, "operator", PASSWORD).status_code == 302  # four failures: still fine
    client.logout()
    fail(client, "operator", 5)

    response = log_in(client, "operator", PASSWORD)

    assert response.status_code == 429
    assert not logged_in(client)
    page = response.content.decode()
    assert "Login refused: too many failed logins for <strong>operator</strong>" in page
    assert "for 15 minutes" in page and "Ask a cfadmin admin to clear the lockout" in page
    assert int(response["Retry-After"]) == 15 * 60
    locked = AuditEvent.objects.filter(action=AuditAction.LOCKED_OUT)
    assert locked.exists()
    event = locked.first()
    assert (event.address, event.user_agent, event.target_repr) == (ADDRESS, AGENT, "operator")
    assert "locked out after 5 failed logins" in event.message


def test_the_lockout_counts_per_user_across_addresses(client, operator):
    for n in range(5):
        fail(client, "operator", 1, address=f"198.51.100.{n + 1}")

    assert log_in(client, "operator", PASSWORD, address="198.51.100.99").status_code == 429


def test_the_lockout_counts_per_address_across_user_names(client, operator):
    for name in ("alice", "bob", "carol", "dave", "erin"):
        fail(client, name, 1)

    assert log_in(client, "operator", PASSWORD).status_code == 429  # same address
    assert log_in(client, "operator", PASSWORD, address="192.0.2.50").status_code == 302


def test_an_admin_unlocks_from_the_access_attempts_list_and_it_is_audited(
    client, operator, admin_role
):
    fail(client, "operator", 5)
    assert log_in(client, "operator", PASSWORD).status_code == 429
    attempts = list(AccessAttempt.objects.filter(username="operator"))
    assert attempts

    admin_client = client.__class__()
    admin_client.force_login(admin_role)
    listing = admin_client.get(ATTEMPTS)
    assert listing.status_code == 200
    assert "unlock" in {v for v, _ in listing.context["action_form"].fields["action"].choices}
    response = admin_client.post(
        ATTEMPTS, {"action": "unlock", "_selected_action": [a.pk for a in attempts]}
    )

    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username="operator").exists()
    cleared = AuditEvent.objects.get(action=AuditAction.LOCKOUT_CLEARED)
    assert cleared.actor == admin_role
    assert "Cleared 6 failed logins as 'operator' from 203.0.113.7" in cleared.message
    assert log_in(client, "operator", PASSWORD).status_code == 302
    assert logged_in(client)


def test_an_admin_unlocks_a_user_from_the_user_list(client, operator, admin_role):
    fail(client, "operator", 5)
    admin_client = client.__class__()
    admin_client.force_login(admin_role)

    response = admin_client.post(
        USERS, {"action": "unlock_login", "_selected_action": [operator.pk]}, follow=True
    )

    assert "Cleared 1 failed-login record of operator" in response.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.LOCKOUT_CLEARED).count() == 1
    assert log_in(client, "operator", PASSWORD).status_code == 302


def test_lockouts_are_neither_visible_nor_clearable_below_the_admin_role(client, operator):
    fail(client, "someone", 5)
    client.force_login(operator)

    assert client.get(ATTEMPTS).status_code == 403
    client.post(
        ATTEMPTS,
        {"action": "unlock", "_selected_action": [a.pk for a in AccessAttempt.objects.all()]},
    )
    assert AccessAttempt.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.LOCKOUT_CLEARED).exists()


def test_attempts_cannot_be_deleted_past_the_audited_unlock(client, superuser):
    client.post(LOGIN, {"username": "x", "password": "y"}, REMOTE_ADDR=ADDRESS)
    attempt = AccessAttempt.objects.get()
    client.force_login(superuser)

    assert client.post(f"{ATTEMPTS}{attempt.pk}/delete/", {"post": "yes"}).status_code == 403
    actions = client.get(ATTEMPTS).context["action_form"].fields["action"].choices
    assert "delete_selected" not in {value for value, _ in actions}
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()


# --- login, logout and failures in the audit trail ---------------------------------------------


def test_login_logout_and_a_failed_login_are_audited_with_address_and_user_agent(client, viewer):
    assert log_in(client, "viewer", "not-the-password-1").status_code == 200
    assert log_in(client, "viewer", PASSWORD).status_code == 302
    assert client.post(
        reverse("admin:logout"), REMOTE_ADDR=ADDRESS, HTTP_USER_AGENT=AGENT
    ).status_code in (200, 302)

    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == [
        AuditAction.LOGIN_FAILED,
        AuditAction.LOGIN,
        AuditAction.LOGOUT,
    ]
    assert all((e.address, e.user_agent) == (ADDRESS, AGENT) for e in events)
    failed, login, logout = events
    assert failed.actor is None and failed.actor_repr == "anonymous"
    assert failed.target_repr == "viewer"
    assert failed.changes == {
        "username": "viewer",
        "reason": "wrong username or password, or inactive account",
    }
    assert (login.actor, login.message) == (viewer, "viewer logged in from 203.0.113.7")
    assert logout.changes == {"reason": "logged out by the user"}
    text = all_audit_text()
    assert "not-the-password-1" not in text and PASSWORD not in text


def test_a_failed_login_for_an_unknown_name_is_recorded_without_a_target(client):
    log_in(client, "nobody-here", "whatever-password")

    event = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert (event.target_type, event.target_repr) == (None, "")
    assert "Login as 'nobody-here' from 203.0.113.7 refused" in event.message


def test_the_audit_list_shows_and_searches_the_address(client, viewer, superuser):
    log_in(client, "viewer", PASSWORD)
    client.force_login(superuser)

    response = client.get("/admin/cfadmin/auditevent/", {"q": ADDRESS})

    assert [e.action for e in response.context["cl"].result_list] == [AuditAction.LOGIN]
    assert ADDRESS in response.content.decode()


# --- the client's address ------------------------------------------------------------------------


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(rf, settings):
    settings.TRUSTED_PROXIES = parse_trusted_proxies("10.0.1.0/24")
    behind = rf.get("/", REMOTE_ADDR="10.0.1.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.8")
    spoofed = rf.get("/", REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="10.9.9.9")
    chain = rf.get("/", REMOTE_ADDR="10.0.1.5", HTTP_X_FORWARDED_FOR="198.51.100.8, 10.0.1.7")
    garbage = rf.get("/", REMOTE_ADDR="10.0.1.5", HTTP_X_FORWARDED_FOR="not-an-ip")

    # The right-most address the proxy saw; what the client wrote further left is not trusted.
    assert client_address(behind) == "198.51.100.8"
    assert client_address(spoofed) == "198.51.100.9"
    assert client_address(chain) == "198.51.100.8"
    assert client_address(garbage) == "10.0.1.5"
    assert client_address(rf.get("/", REMOTE_ADDR="unix:/run/gunicorn.sock")) is None


def test_a_login_behind_the_proxy_is_locked_out_by_the_clients_address(client, settings, viewer):
    settings.TRUSTED_PROXIES = parse_trusted_proxies("10.0.1.0/24")
    for name in ("a", "b", "c", "d", "e"):
        client.post(
            LOGIN,
            {"username": name, "password": "x"},
            REMOTE_ADDR="10.0.1.5",
            HTTP_X_FORWARDED_FOR="198.51.100.8",
        )

    other_client = client.post(
        LOGIN,
        {"username": "viewer", "password": PASSWORD},
        REMOTE_ADDR="10.0.1.5",
        HTTP_X_FORWARDED_FOR="198.51.100.77",
    )

    assert other_client.status_code == 302  # the proxy itself is not locked out
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.8"}


def test_trusting_every_proxy_is_refused():
    with pytest.raises(ValueError, match="would trust X-Forwarded-For from any client"):
        parse_trusted_proxies("*")
    with pytest.raises(ValueError, match=r"'proxy\.local' is not an IP address"):
        parse_trusted_proxies("10.0.0.1, proxy.local")
    assert parse_trusted_proxies("") == ()


def test_lockout_parameters_from_the_environment():
    assert parse_lockout_parameters(["username", "ip_address+user_agent"]) == [
        "username",
        ["ip_address", "user_agent"],
    ]
    with pytest.raises(ValueError, match="cookie is not one of username, ip_address"):
        parse_lockout_parameters(["username+cookie"])


# --- session limits --------------------------------------------------------------------------


def age_session(client, *, idle: float = 0, since_login: float = 0) -> None:
    session = client.session
    now = time.time()
    session[idle_timeout.LAST_SEEN_KEY] = now - idle
    session[idle_timeout.STARTED_KEY] = now - since_login
    session.save()


def test_a_session_idle_longer_than_the_timeout_is_logged_out(client, viewer, settings):
    settings.SESSION_IDLE_TIMEOUT = 30 * 60
    log_in(client, "viewer", PASSWORD)
    age_session(client, idle=29 * 60)
    assert client.get("/admin/").status_code == 200

    age_session(client, idle=31 * 60)
    response = client.get("/admin/stacks/stack/", REMOTE_ADDR=ADDRESS)

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=%2Fadmin%2Fstacks%2Fstack%2F"
    assert not logged_in(client)
    assert client.get("/admin/").status_code == 302
    logout = AuditEvent.objects.get(action=AuditAction.LOGOUT)
    assert logout.changes == {"reason": "session ended after 30 minutes without activity"}
    page = client.get(response["Location"]).content.decode()
    assert "Please log in again: your session ended after 30 minutes without activity" in page


def test_a_busy_session_still_ends_after_the_absolute_limit(client, viewer, settings):
    settings.SESSION_COOKIE_AGE = 12 * 3600
    log_in(client, "viewer", PASSWORD)
    age_session(client, idle=10, since_login=11 * 3600)
    assert client.get("/admin/").status_code == 200

    age_session(client, idle=10, since_login=12 * 3600 + 60)

    assert client.get("/admin/").status_code == 302
    assert not logged_in(client)
    reason = AuditEvent.objects.get(action=AuditAction.LOGOUT).changes["reason"]
    assert reason == "session ended 12 hours after login"


def test_activity_is_written_to_the_session_at_most_once_a_minute(client, viewer):
    log_in(client, "viewer", PASSWORD)
    age_session(client, idle=10)
    before = client.session[idle_timeout.LAST_SEEN_KEY]
    client.get("/admin/")
    assert client.session[idle_timeout.LAST_SEEN_KEY] == before

    age_session(client, idle=61)
    client.get("/admin/")
    assert client.session[idle_timeout.LAST_SEEN_KEY] > before


# --- password rules --------------------------------------------------------------------------


def test_a_password_of_eleven_characters_is_refused_and_twelve_accepted():
    with pytest.raises(ValidationError, match="at least 12 characters"):
        validate_password("Xk4#pQ9!mZ2")
    validate_password("Xk4#pQ9!mZ2w")


def test_the_admin_refuses_a_short_password_for_a_new_user(client, superuser):
    client.force_login(superuser)
    response = client.post(
        f"{USERS}add/",
        {
            "username": "newbie",
            "usable_password": "true",
            "password1": "Xk4#pQ9!mZ2",
            "password2": "Xk4#pQ9!mZ2",
        },
    )

    assert response.status_code == 200
    assert "at least 12 characters" in response.content.decode()
