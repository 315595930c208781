"""Logins, logouts and failed logins in the audit trail, with the address and user agent.

Django's auth signals carry the request; the password never reaches these receivers (Django
masks it in `credentials` before sending user_login_failed), and nothing here reads it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.http import HttpRequest

from cfadmin import audit
from cfadmin.models import AuditAction
from cfadmin.security.proxies import client_address, user_agent

# Why a logout happened, when cfadmin ended the session itself (idle_timeout.py sets it).
LOGOUT_REASON_ATTRIBUTE = "cfadmin_logout_reason"
ANONYMOUS = "anonymous"


def _origin(request: HttpRequest | None) -> dict[str, Any]:
    if request is None:
        return {"address": None, "user_agent": ""}
    return {"address": client_address(request), "user_agent": user_agent(request)}


def _where(origin: dict[str, Any]) -> str:
    return f"from {origin['address'] or 'an unknown address'}"


def record_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    origin = _origin(request)
    audit.record(
        actor=user,
        action=AuditAction.LOGIN,
        target=user,
        message=f"{user.get_username()} logged in {_where(origin)}",
        **origin,
    )


def record_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None:  # logging out a session that was not logged in
        return
    origin = _origin(request)
    reason = getattr(request, LOGOUT_REASON_ATTRIBUTE, "") or "logged out by the user"
    audit.record(
        actor=user,
        action=AuditAction.LOGOUT,
        target=user,
        message=f"{user.get_username()} logged out {_where(origin)}: {reason}",
        changes={"reason": reason},
        **origin,
    )


def record_login_failure(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """One event per refused login. Runs after django-axes' own receiver (apps.py connects it
    after importing axes.signals), so a login refused because of a lockout is recorded as one."""
    origin = _origin(request)
    username = str(credentials.get(get_user_model().USERNAME_FIELD) or "")[:150]
    target = (
        get_user_model()
        ._default_manager.filter(**{get_user_model().USERNAME_FIELD: username})
        .first()
    )
    locked_out = bool(request is not None and getattr(request, "axes_locked_out", False))
    if locked_out:
        minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
        reason = (
            f"locked out after {settings.AXES_FAILURE_LIMIT} failed logins; "
            f"refused for {minutes} minutes unless an admin unlocks it"
        )
        action = AuditAction.LOCKED_OUT
    else:
        reason = "wrong username or password, or inactive account"
        action = AuditAction.LOGIN_FAILED
    audit.record(
        actor=ANONYMOUS,
        action=action,
        target=target,
        message=f"Login as {username!r} {_where(origin)} refused: {reason}",
        changes={"username": username, "reason": reason},
        **origin,
    )


def connect() -> None:
    # Imported first so that axes' receivers (which mark a locked-out request) run before ours.
    import axes.signals  # noqa: F401

    user_logged_in.connect(record_login, dispatch_uid="cfadmin.audit.login")
    user_logged_out.connect(record_logout, dispatch_uid="cfadmin.audit.logout")
    user_login_failed.connect(record_login_failure, dispatch_uid="cfadmin.audit.login_failed")
