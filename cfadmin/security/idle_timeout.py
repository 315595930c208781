"""Sessions end after SESSION_IDLE_TIMEOUT seconds without a request, and SESSION_COOKIE_AGE
seconds after login in any case.

Django alone gives one or the other: its cookie age slides whenever the session is saved, and
this middleware saves it (the last-activity time) at most once a minute. So both limits are
checked here, from two times kept in the session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from cfadmin.security.login_events import LOGOUT_REASON_ATTRIBUTE

STARTED_KEY = "cfadmin_session_started"
LAST_SEEN_KEY = "cfadmin_last_seen"
# Writing the session on every request would cost a query each; a minute's precision is plenty.
RESOLUTION_SECONDS = 60


def expiry_reason(session: dict, now: float) -> str:
    """Why this session is over, or '' while it is not."""
    started = session.get(STARTED_KEY, now)
    last_seen = session.get(LAST_SEEN_KEY, now)
    idle_limit, age_limit = settings.SESSION_IDLE_TIMEOUT, settings.SESSION_COOKIE_AGE
    if now - last_seen > idle_limit:
        return f"session ended after {idle_limit // 60} minutes without activity"
    if now - started > age_limit:
        return f"session ended {age_limit // 3600} hours after login"
    return ""


def mark_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """user_logged_in receiver: both clocks start at the login (Django keeps the session's data
    when the same user logs in again)."""
    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[STARTED_KEY] = now
        request.session[LAST_SEEN_KEY] = now


class SessionTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated:
            return self.get_response(request)
        now = time.time()
        reason = expiry_reason(request.session, now)
        if reason:
            setattr(request, LOGOUT_REASON_ATTRIBUTE, reason)
            logout(request)
            messages.warning(request, f"Please log in again: your {reason}.")
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{reverse('admin:login')}?{query}")
        request.session.setdefault(STARTED_KEY, now)
        if now - request.session.get(LAST_SEEN_KEY, 0) >= RESOLUTION_SECONDS:
            request.session[LAST_SEEN_KEY] = now
        return self.get_response(request)
