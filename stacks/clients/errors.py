"""Typed errors for remote calls. They carry the remote's own message, never a request body.

A remote may echo what it was sent (a 422 quoting the env value it refused), so the HTTP layer
scrubs every value of the request from the answer before an error is built (clients/http.py),
and an error keeps at most ERROR_TEXT_MAX characters of remote text: its message and its field
errors are what operators see, and what the database and the logs keep.
"""

from __future__ import annotations

ERROR_TEXT_MAX = 500  # characters of the remote's message; as many again for field errors
FIELD_ERRORS_MAX = 20  # field error entries kept
ELLIPSIS = "…"


def truncate(text: str, limit: int = ERROR_TEXT_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def bounded_field_errors(
    field_errors: dict[str, list[str]], budget: int = ERROR_TEXT_MAX
) -> dict[str, list[str]]:
    """The field errors within `budget` characters in all (names and messages)."""
    kept: dict[str, list[str]] = {}
    entries = 0
    for raw_name, messages in field_errors.items():
        name = truncate(str(raw_name), 100)
        for message in messages or [""]:
            if budget <= len(name) or entries >= FIELD_ERRORS_MAX:
                kept[ELLIPSIS] = ["more field errors left out"]
                return kept
            text = truncate(str(message), budget - len(name))
            kept.setdefault(name, []).extend([text] if text else [])
            budget -= len(name) + len(text)
            entries += 1
    return kept


class ClientError(Exception):
    """A remote call failed. `transient` errors may succeed if the same call is made again."""

    transient = False

    def __init__(
        self,
        message: str,
        *,
        service: str,
        status: int | None = None,
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
        field_errors: dict[str, list[str]] | None = None,
    ) -> None:
        message = truncate(message)
        super().__init__(message)
        self.message = message
        self.service = service
        self.status = status
        self.method = method
        self.path = path
        self.retry_after = retry_after
        self.field_errors = bounded_field_errors(field_errors or {})

    def __str__(self) -> str:
        where = f" ({self.method} {self.path})" if self.method else ""
        status = f"HTTP {self.status}: " if self.status else ""
        fields = ""
        if self.field_errors:
            fields = " — " + "; ".join(
                f"{name}: {' '.join(messages)}" for name, messages in self.field_errors.items()
            )
        return f"{self.service}{where}: {status}{self.message}{fields}"


class ConnectionFailed(ClientError):
    """The request did not complete: refused, reset, or no answer in time."""

    transient = True


class NotConnected(ConnectionFailed):
    """The connection could not be opened: the request was never sent, so repeating is safe."""


class RemoteTimeout(ConnectionFailed):
    """No answer within the timeout; the remote may still have acted on the request."""


class BadRequest(ClientError):
    """400: the remote refused the request as it stands."""


class AlreadyInState(BadRequest):
    """400 "already running/stopped": the goal of the call is already met."""


class AuthenticationFailed(ClientError):
    """401: the token or credentials are missing, wrong or expired."""


class PermissionDenied(ClientError):
    """403: the token lacks an ability, or the API is disabled or IP-restricted."""


class NotFound(ClientError):
    """404."""


class Conflict(ClientError):
    """409: e.g. a domain another resource already uses."""


class ValidationFailed(ClientError):
    """422 with the remote's field errors."""


class RateLimited(ClientError):
    """429: too many calls; `retry_after` says when to try again."""

    transient = True


class ServerError(ClientError):
    """5xx: the remote failed; often passing."""

    transient = True


def error_for_status(status: int) -> type[ClientError]:
    if status == 400:
        return BadRequest
    if status == 401:
        return AuthenticationFailed
    if status == 403:
        return PermissionDenied
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    if status == 422:
        return ValidationFailed
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return ClientError
