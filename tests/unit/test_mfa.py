"""The second factor: operators, admins and superusers cannot reach any admin page with a
password alone; they enrol a TOTP app (QR code, key, recovery codes shown once) or verify;
viewers are not asked; an admin resets a lost factor. Enforcement is switched on here (the rest
of the suite runs with MFA_ENFORCED off, see tests/settings.py)."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from cfadmin.models import AuditAction, AuditEvent
from cfadmin.security import mfa
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ENROL = "/admin/mfa/enrol/"
VERIFY = "/admin/mfa/verify/"
USERS = "/admin/auth/user/"


@pytest.fixture(autouse=True)
def enforced(settings):
    settings.MFA_ENFORCED = True
    settings.MFA_REQUIRED_ROLES = ["operator", "admin"]


@pytest.fixture
def stack(make_stack):
    return make_stack()


def admin_pages(stack) -> list[str]:
    return [
        "/admin/",
        "/admin/stacks/stack/",
        f"/admin/stacks/stack/{stack.pk}/change/",
        "/admin/stacks/stack/deploy/",
        "/admin/tenants/tenant/",
        "/admin/cfadmin/auditevent/",
        "/admin/ops/healthcheckresult/dashboard/",
        "/admin/ops/incident/",
        "/admin/password_change/",
        "/",
    ]


def password_login(client, user) -> None:
    response = client.post(
        "/admin/login/", {"username": user.username, "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302, "the password login itself failed"


def code(device: TOTPDevice, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def enrolled(user) -> TOTPDevice:
    """A confirmed TOTP device with two recovery codes, as enrolment leaves it."""
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    recovery = StaticDevice.objects.create(user=user, name="recovery codes")
    StaticToken.objects.create(device=recovery, token="aaaabbbb")
    StaticToken.objects.create(device=recovery, token="ccccdddd")
    return device


def verified_client(client, user):
    """A session that has given its second factor (as the verify page leaves it)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or enrolled(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def test_who_must_use_a_second_factor(operator, admin_role, superuser, viewer, support, settings):
    assert [mfa.mfa_required(u) for u in (operator, admin_role, superuser)] == [True] * 3
    assert [mfa.mfa_required(u) for u in (viewer, support)] == [False, False]
    settings.MFA_REQUIRED_ROLES = ["admin"]
    assert not mfa.mfa_required(operator)
    settings.MFA_ENFORCED = False
    assert not mfa.mfa_required(superuser)


def test_an_operator_with_only_a_password_reaches_no_admin_page(client, operator, stack):
    password_login(client, operator)

    for url in admin_pages(stack):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"{ENROL}?next="), url
    # Nor does a POST act: the stack action is never run.
    response = client.post(
        "/admin/stacks/stack/", {"action": "restart_stacks", "_selected_action": [stack.pk]}
    )
    assert response.status_code == 302 and response["Location"].startswith(ENROL)
    assert not stack.operations.exists()


def test_enrolment_shows_qr_and_key_then_recovery_codes_once_then_opens_the_admin(
    client, operator, stack
):
    password_login(client, operator)
    page = client.get(f"{ENROL}?next=/admin/stacks/stack/")
    assert page.status_code == 200
    assert page["Cache-Control"].startswith("max-age=0") and "no-store" in page["Cache-Control"]
    html = page.content.decode()
    device = TOTPDevice.objects.get(user=operator, confirmed=False)
    key = mfa.manual_key(device)
    assert key in html and '<svg width="' in html and 'class="segno"' in html
    assert "Your role needs a second factor" in html
    assert client.get(ENROL).content.decode().count(key) == 1  # same device on reload

    wrong = client.post(ENROL, {"code": "000000", "next": "/admin/stacks/stack/"})
    assert "That code is not right" in wrong.content.decode()
    TOTPDevice.objects.filter(pk=device.pk).update(  # as if the user waited a moment
        throttling_failure_timestamp=timezone.now() - timedelta(seconds=5)
    )
    done = client.post(ENROL, {"code": code(device), "next": "/admin/stacks/stack/"})

    assert done.status_code == 200
    codes = re.findall(r"<li>([a-z2-7]{8})</li>", done.content.decode())
    assert len(codes) == 10
    assert sorted(codes) == sorted(
        StaticToken.objects.filter(device__user=operator).values_list("token", flat=True)
    )
    assert 'href="/admin/stacks/stack/"' in done.content.decode()
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    for url in admin_pages(stack):
        assert client.get(url).status_code in (200, 302), url
        assert not client.get(url).get("Location", "").startswith(("/admin/mfa/", "/admin/login"))
    # Never again: the key and the codes are not on any page, nor in the audit trail.
    again = client.get(ENROL).content.decode()
    assert key not in again and codes[0] not in again
    assert "Two-factor authentication is on" in again
    event = AuditEvent.objects.get(action=AuditAction.MFA_ENROLLED)
    assert event.actor == operator
    trail = json.dumps([[e.message, e.changes] for e in AuditEvent.objects.all()])
    assert key.replace(" ", "") not in trail and device.key not in trail
    assert not any(c in trail for c in codes)


def test_next_login_asks_for_the_code_and_a_valid_code_opens_every_page(client, operator, stack):
    device = enrolled(operator)
    password_login(client, operator)

    for url in admin_pages(stack):
        response = client.get(url)
        assert response["Location"].startswith(f"{VERIFY}?next="), url
    assert "Type the 6-digit code" in client.get(VERIFY).content.decode()

    used = code(device)
    response = client.post(VERIFY, {"code": used, "next": "/admin/stacks/stack/"})

    assert response.status_code == 302 and response["Location"] == "/admin/stacks/stack/"
    for url in admin_pages(stack):
        assert client.get(url).status_code in (200, 302), url
    assert client.get("/admin/stacks/stack/").status_code == 200
    # The same code cannot be used twice (a second session that replays it; the code typed,
    # not one computed now: a 30-second step may have passed meanwhile).
    other = client.__class__()
    password_login(other, operator)
    replay = other.post(VERIFY, {"code": used})
    assert "That code is not right" in replay.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.MFA_FAILED).count() == 1


def test_a_recovery_code_works_once(client, operator):
    enrolled(operator)
    password_login(client, operator)

    response = client.post(VERIFY, {"code": "AAAA-BBBB", "next": "/admin/"}, follow=True)

    assert response.redirect_chain == [("/admin/", 302)]
    assert "You used a recovery code; 1 left" in response.content.decode()
    assert not StaticToken.objects.filter(token="aaaabbbb").exists()
    used = AuditEvent.objects.get(action=AuditAction.MFA_RECOVERY_CODE_USED)
    assert used.message == "operator used a recovery code; 1 left"
    other = client.__class__()
    password_login(other, operator)
    refused = other.post(VERIFY, {"code": "aaaabbbb"})
    assert "neither a 6-digit code from your app nor an unused recovery code" in (
        refused.content.decode()
    )
    assert other.get("/admin/").status_code == 302


def test_wrong_codes_slow_down_further_tries(client, operator):
    device = enrolled(operator)
    password_login(client, operator)
    client.post(VERIFY, {"code": "123456"})

    response = client.post(VERIFY, {"code": code(device)})

    assert "Too many wrong codes: wait a little" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_a_viewer_is_not_asked_and_superusers_are(client, viewer, superuser):
    password_login(client, viewer)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/stacks/stack/").status_code == 200

    other = client.__class__()
    password_login(other, superuser)
    assert other.get("/admin/")["Location"].startswith(ENROL)


def test_a_viewer_who_enrolled_is_asked_for_the_code(client, viewer):
    enrolled(viewer)
    password_login(client, viewer)

    assert client.get("/admin/")["Location"].startswith(VERIFY)


def test_without_enforcement_nobody_is_asked(client, operator, settings):
    settings.MFA_ENFORCED = False
    enrolled(operator)
    password_login(client, operator)

    assert client.get("/admin/").status_code == 200


def test_an_unsafe_next_url_is_not_followed(client, operator):
    device = enrolled(operator)
    password_login(client, operator)

    response = client.post(VERIFY, {"code": code(device), "next": "https://evil.example/"})

    assert response["Location"] == "/admin/"


def test_an_admin_resets_a_lost_second_factor_and_it_is_audited(client, admin_role, operator):
    enrolled(operator)
    lost_phone = client.__class__()
    verified_client(lost_phone, operator)
    assert lost_phone.get("/admin/").status_code == 200
    verified_client(client, admin_role)

    response = client.post(
        USERS, {"action": "reset_second_factor", "_selected_action": [operator.pk]}, follow=True
    )

    assert "Second factor reset for 1 user." in response.content.decode()
    assert not TOTPDevice.objects.filter(user=operator).exists()
    assert not StaticDevice.objects.filter(user=operator).exists()
    event = AuditEvent.objects.get(action=AuditAction.MFA_RESET)
    assert (event.actor, event.target_repr) == (admin_role, "operator")
    assert event.message == "Second factor of operator reset: 2 devices removed"
    # The operator's session no longer counts as verified: back to enrolment.
    assert lost_phone.get("/admin/")["Location"].startswith(ENROL)


def test_the_admin_role_cannot_reset_a_superusers_second_factor(client, admin_role, superuser):
    enrolled(superuser)
    verified_client(client, admin_role)

    response = client.post(
        USERS, {"action": "reset_second_factor", "_selected_action": [superuser.pk]}, follow=True
    )

    assert "1 superuser skipped" in response.content.decode()
    assert TOTPDevice.objects.filter(user=superuser).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.MFA_RESET).exists()


def test_below_the_admin_role_nobody_resets_a_second_factor(client, operator, viewer):
    enrolled(viewer)
    verified_client(client, operator)

    client.post(USERS, {"action": "reset_second_factor", "_selected_action": [viewer.pk]})

    assert TOTPDevice.objects.filter(user=viewer).exists()
    assert client.get(USERS).status_code == 403


def test_django_otps_own_device_admins_are_not_there(client, superuser):
    verified_client(client, superuser)

    assert client.get("/admin/otp_totp/totpdevice/").status_code == 404
    assert client.get("/admin/otp_static/staticdevice/").status_code == 404
