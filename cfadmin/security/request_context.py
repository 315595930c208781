"""The request being served, for audit events written far from any view (password changes).

Like netbox's change logging: a ContextVar set for the length of one request, so a model
signal knows who acted and from where. Outside a request there is no origin.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse

from cfadmin.security.proxies import client_address, user_agent


@dataclass(frozen=True)
class Origin:
    user: Any = None  # the authenticated user, or None
    address: str | None = None
    user_agent: str = ""


NO_ORIGIN = Origin()
_current: ContextVar[HttpRequest | None] = ContextVar("cfadmin_request", default=None)


def current_origin() -> Origin:
    request = _current.get()
    if request is None:
        return NO_ORIGIN
    user = getattr(request, "user", None)
    return Origin(
        user=user if user is not None and user.is_authenticated else None,
        address=client_address(request),
        user_agent=user_agent(request),
    )


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(request)
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
