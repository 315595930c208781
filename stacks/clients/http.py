"""A small JSON-over-HTTP base: timeouts on every call, typed errors, bounded jittered retries.

Retries happen only where repeating the call is safe: reads (`idempotent=True`), and any call
that the remote provably did not process (the connection was refused before the request was
sent, or a 429). A write whose answer was lost is not repeated here; the provisioning steps
make writes safe by looking for their result first. No Django imports.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from stacks.clients.errors import (
    ClientError,
    ConnectionFailed,
    NotConnected,
    RateLimited,
    RemoteTimeout,
    error_for_status,
)

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 4
BACKOFF_BASE = 0.5  # seconds; doubled each attempt, with full jitter
BACKOFF_MAX = 8.0
RETRY_AFTER_MAX = 60.0  # a longer Retry-After is reported, not slept through


class JsonHttpClient:
    service = "remote"

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 15.0,
        attempts: int = DEFAULT_ATTEMPTS,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        headers: dict[str, str] | None = None,
        event_hooks: dict[str, list[Callable]] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.attempts = max(1, attempts)
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            headers={"Accept": "application/json", **(headers or {})},
            event_hooks=event_hooks or {},
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> JsonHttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def auth_headers(self) -> dict[str, str]:
        return {}

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json: Any = None,
        params: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """One logical call; raises a ClientError subclass for anything but `expect`."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send(method, path, json=json, params=params)
            except ClientError as error:
                if not self._should_retry(error, attempt, idempotent=idempotent):
                    raise
                self._back_off(error, attempt)
                continue
            if response.status_code in expect:
                return response
            error = self._error_from(response, method, path)
            if not self._should_retry(error, attempt, idempotent=idempotent):
                raise error
            self._back_off(error, attempt)

    def _send(self, method: str, path: str, *, json: Any, params: Any) -> httpx.Response:
        try:
            return self.http.request(
                method, path, json=json, params=params, headers=self.auth_headers()
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise NotConnected(
                f"cannot connect to {self.base_url}: {exc}",
                service=self.service,
                method=method,
                path=path,
            ) from None
        except httpx.TimeoutException:
            raise RemoteTimeout(
                "no answer in time", service=self.service, method=method, path=path
            ) from None
        except httpx.TransportError as exc:  # reset, broken pipe, protocol errors
            raise ConnectionFailed(
                f"connection failed: {type(exc).__name__}",
                service=self.service,
                method=method,
                path=path,
            ) from None

    def _should_retry(self, error: ClientError, attempt: int, *, idempotent: bool) -> bool:
        if attempt >= self.attempts or not error.transient:
            return False
        if isinstance(error, RateLimited):
            return error.retry_after is None or error.retry_after <= RETRY_AFTER_MAX
        return idempotent or isinstance(error, NotConnected)

    def _back_off(self, error: ClientError, attempt: int) -> None:
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = error.retry_after + random.uniform(0, 0.5)
        else:
            delay = random.uniform(0, min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1)))
        logger.info("%s: %s; retrying in %.1fs (attempt %d)", self.service, error, delay, attempt)
        self.sleep(delay)

    def _error_from(self, response: httpx.Response, method: str, path: str) -> ClientError:
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        message = ""
        field_errors: dict[str, list[str]] = {}
        if isinstance(body, dict):
            message = str(body.get("message") or "")
            raw_errors = body.get("errors") if "errors" in body else body.get("data")
            if isinstance(raw_errors, dict):
                for name, value in raw_errors.items():
                    if isinstance(value, list):
                        field_errors[name] = [str(v) for v in value]
                    elif isinstance(value, dict):
                        field_errors[name] = [str(value.get("message", value))]
                    else:
                        field_errors[name] = [str(value)]
            elif isinstance(raw_errors, list):
                field_errors["_"] = [str(v) for v in raw_errors]
            conflicts = body.get("conflicts")
            if isinstance(conflicts, list):  # Coolify's 409: which domain, used by whom
                field_errors["conflicts"] = [
                    str(c.get("message") or c.get("domain"))
                    for c in conflicts
                    if isinstance(c, dict)
                ]
        if not message:
            message = response.reason_phrase or "error"
        retry_after = None
        if response.status_code == 429:
            try:
                retry_after = float(response.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
        cls = self.error_class(response.status_code, message)
        return cls(
            message,
            service=self.service,
            status=response.status_code,
            method=method,
            path=path,
            retry_after=retry_after,
            field_errors=field_errors,
        )

    def error_class(self, status: int, message: str) -> type[ClientError]:
        return error_for_status(status)
