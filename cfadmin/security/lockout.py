"""Login lockout (django-axes): the page a locked-out login gets, and the admin's unlock."""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from cfadmin import audit
from cfadmin.models import AuditAction
from cfadmin.permissions import may

CHANGE_USER = "auth.change_user"
LOCKOUT_TEMPLATE = "admin/lockout.html"
LOCKOUT_STATUS = 429


def may_unlock(user: Any) -> bool:
    """Whoever manages staff accounts (the admin role) clears their lockouts."""
    return may(user, CHANGE_USER)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the login page's look, saying what happened and what to do."""
    cool_off = settings.AXES_COOLOFF_TIME
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {
        **admin.site.each_context(request),
        "title": "Login refused",
        "username": username,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cool_off_minutes": int(cool_off.total_seconds() // 60),
        "retry_after": timezone.localtime(timezone.now() + cool_off),
    }
    response = TemplateResponse(request, LOCKOUT_TEMPLATE, context, status=LOCKOUT_STATUS)
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response.render()


def clear_attempts(attempts: QuerySet[AccessAttempt], *, actor: Any) -> int:
    """Delete the failed-login counters (which lifts the lockout they caused), one audit event
    per record: whose login, from where, how many failures."""
    cleared = 0
    with transaction.atomic():
        for attempt in attempts.select_for_update():
            audit.record(
                actor=actor,
                action=AuditAction.LOCKOUT_CLEARED,
                message=(
                    f"Cleared {attempt.failures_since_start} failed logins as "
                    f"{attempt.username!r} from {attempt.ip_address or 'an unknown address'}"
                ),
                changes={
                    "username": attempt.username,
                    "ip_address": attempt.ip_address,
                    "user_agent": attempt.user_agent,
                    "failures": attempt.failures_since_start,
                },
            )
            attempt.delete()
            cleared += 1
    return cleared


def clear_user_lockouts(usernames: list[str], *, actor: Any) -> int:
    return clear_attempts(AccessAttempt.objects.filter(username__in=usernames), actor=actor)
