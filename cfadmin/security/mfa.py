"""Second factor (django-otp): who must have one, enrolment, verification, reset.

A TOTP app is the factor; ten single-use recovery codes (otp_static) are made at enrolment and
shown once. The pages are in mfa_views.py; mfa_gate.py keeps everyone who still owes a second
factor away from every other page.
"""

from __future__ import annotations

import enum
import re
from base64 import b32encode
from dataclasses import dataclass
from typing import Any

import segno
from django.conf import settings
from django.db import transaction
from django.utils.safestring import SafeString, mark_safe
from django_otp import devices_for_user
from django_otp import verify_token as otp_verify_token
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from cfadmin import audit
from cfadmin.models import AuditAction

TOTP_DEVICE_NAME = "authenticator app"
RECOVERY_DEVICE_NAME = "recovery codes"
RECOVERY_CODE_COUNT = 10
TOTP_CODE = re.compile(r"^\d{6}$")


class Step(enum.StrEnum):
    """What a logged-in user still has to do before any admin page opens."""

    ENROL = "enrol"
    VERIFY = "verify"


def mfa_required(user: Any) -> bool:
    """Must this user use a second factor? Superusers and members of MFA_REQUIRED_ROLES, while
    MFA_ENFORCED is on (the default outside DEBUG)."""
    if not settings.MFA_ENFORCED or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user.groups.filter(name__in=settings.MFA_REQUIRED_ROLES).exists()


def has_second_factor(user: Any) -> bool:
    return user.is_authenticated and TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def pending_step(user: Any) -> Step | None:
    """None when the session may go anywhere. Someone who enrolled without having to is asked
    for the code too: an optional factor that is never checked protects nothing."""
    if not settings.MFA_ENFORCED or not user.is_authenticated:
        return None
    if getattr(user, "is_verified", lambda: False)():
        return None
    if has_second_factor(user):
        return Step.VERIFY
    return Step.ENROL if mfa_required(user) else None


# --- enrolment ---------------------------------------------------------------------------------


def enrolment_device(user: Any) -> TOTPDevice:
    """The unconfirmed TOTP device being set up (the same one until confirmed, so reloading the
    page keeps the QR code the user may already have scanned)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)


def manual_key(device: TOTPDevice) -> str:
    """The key in base32, in groups of four, for typing into an app by hand."""
    key = b32encode(device.bin_key).decode()
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def qr_svg(device: TOTPDevice) -> SafeString:
    """The otpauth:// URL as an inline SVG: paths only, the key is not in it as text, and no
    style attribute (fine under the CSP)."""
    svg = segno.make(device.config_url, error="m").svg_inline(
        scale=4, dark="#000", light="#fff", title="QR code for your authenticator app"
    )
    return mark_safe(svg)  # segno's own markup; nothing in it comes from the user


def confirm_enrolment(user: Any, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the device with a code from the app; returns the new recovery codes (shown once),
    or None if the code is wrong. Earlier devices and codes of the user are replaced."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
        if not device.verify_token(normalise(code)):
            return None
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        StaticDevice.objects.filter(user=user).delete()
        recovery = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME)
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=recovery, token=c) for c in codes)
        audit.record(
            actor=user,
            action=AuditAction.MFA_ENROLLED,
            target=user,
            message=(
                f"{user.get_username()} enrolled an authenticator app; "
                f"{RECOVERY_CODE_COUNT} recovery codes issued"
            ),
        )
    return codes


# --- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    device: Device | None
    error: str = ""
    recovery_codes_left: int | None = None  # set when a recovery code was used


def normalise(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def verify(user: Any, code: str) -> Verification:
    """Check a TOTP code, or (anything else) a recovery code, which is then used up. Wrong
    codes slow further tries down (django-otp's throttling) and are audited."""
    code = normalise(code)
    kind = TOTPDevice if TOTP_CODE.match(code) else StaticDevice
    devices = [d for d in devices_for_user(user) if isinstance(d, kind)]
    for device in devices:
        allowed, details = device.verify_is_allowed()
        if not allowed:
            wait = (details or {}).get("locked_until")
            return Verification(
                None,
                "Too many wrong codes: wait a little"
                + (f" (until {wait:%H:%M:%S} UTC)" if wait else "")
                + " and try again.",
            )
    for device in devices:
        verified = otp_verify_token(user, device.persistent_id, code)
        if verified is None:
            continue
        if isinstance(verified, StaticDevice):
            left = verified.token_set.count()
            audit.record(
                actor=user,
                action=AuditAction.MFA_RECOVERY_CODE_USED,
                target=user,
                message=f"{user.get_username()} used a recovery code; {left} left",
            )
            return Verification(verified, recovery_codes_left=left)
        return Verification(verified)
    audit.record(
        actor=user,
        action=AuditAction.MFA_FAILED,
        target=user,
        message=f"{user.get_username()} entered a wrong "
        + ("authenticator code" if kind is TOTPDevice else "recovery code"),
    )
    if kind is TOTPDevice:
        return Verification(None, "That code is not right. Type the 6 digits your app shows now.")
    return Verification(
        None,
        "That is neither a 6-digit code from your app nor an unused recovery code.",
    )


# --- reset (admin) -------------------------------------------------------------------------------


def reset(user: Any, *, actor: Any) -> int:
    """Delete every device of the user: at the next request they enrol again (if they must)."""
    with transaction.atomic():
        devices = list(devices_for_user(user, confirmed=None))
        for device in devices:
            device.delete()
        audit.record(
            actor=actor,
            action=AuditAction.MFA_RESET,
            target=user,
            message=(
                f"Second factor of {user.get_username()} reset: "
                f"{len(devices)} device{'s' if len(devices) != 1 else ''} removed"
            ),
        )
    return len(devices)
