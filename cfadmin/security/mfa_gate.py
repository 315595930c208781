"""Until a user who owes a second factor gives it, every page sends them to enrol or verify."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve, reverse

from cfadmin.security import mfa

# Open without a second factor: the factor's own pages, logging out, static files, and public
# pages (views marked with Django's `login_not_required`, e.g. the status page).
OPEN_URL_NAMES = ("cfadmin_mfa_enrol", "cfadmin_mfa_verify", "admin:logout", "admin:login")
STEP_URL_NAMES = {mfa.Step.ENROL: "cfadmin_mfa_enrol", mfa.Step.VERIFY: "cfadmin_mfa_verify"}


class SecondFactorRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        step = mfa.pending_step(request.user)
        if step is None or self._is_open(request.path):
            return self.get_response(request)
        query = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"{reverse(STEP_URL_NAMES[step])}?{query}")

    @staticmethod
    def _is_open(path: str) -> bool:
        static = "/" + settings.STATIC_URL.lstrip("/")
        if path.startswith(static) or path in {reverse(name) for name in OPEN_URL_NAMES}:
            return True
        try:
            view = resolve(path).func
        except Resolver404:
            return False
        return getattr(view, "login_required", True) is False
