"""A small JSON-over-HTTP base: timeouts on every call, typed errors, bounded jittered retries.

Retries happen only where repeating the call is safe: reads (`idempotent=True`), and any call
that the remote provably did not process (the connection was refused before the request was
sent, or a 429). A write whose answer was lost is not repeated here; the provisioning steps
make writes safe by looking for their result first. No Django imports.

Nothing sent is echoed: a remote's error text may quote the request (a 422 naming the env
value it refused), so every value of the request except the `public_fields` a client names
(domains, names, uuids: what an operator needs to read in "Domain … is already in use") is
removed from the answer, with the token, before it becomes an error, a log line or a row.
"""

from __future__ import annotations

import base64
import binascii
import json as jsonlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from stacks.clients.errors import (
    ClientError,
    ConnectionFailed,
    NotConnected,
    RateLimited,
    RemoteTimeout,
    error_for_status,
)
from stacks.clients.pacing import INTERACTIVE, RatePacer, call_priority

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 4
BACKOFF_BASE = 0.5  # seconds; doubled each attempt, with full jitter
BACKOFF_MAX = 8.0
RETRY_AFTER_MAX = 60.0  # a longer Retry-After is reported, not slept through
REDACTED = "[redacted]"
SCRUB_MIN_LENGTH = 4  # shorter values ("true", "80") are words, not secrets


class Scrubber:
    """Removes the values one request sent from the text of its answer.

    Each value also in the forms a remote might echo it: trimmed (Coolify trims every request
    string), JSON-escaped and URL-encoded. Longest first, so a value that contains another one
    goes as a whole.
    """

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            for form in (
                value,
                value.strip(),
                jsonlib.dumps(value)[1:-1],
                jsonlib.dumps(value, ensure_ascii=False)[1:-1],
                quote(value, safe=""),
                quote_plus(value),
            ):
                if len(form) >= SCRUB_MIN_LENGTH:
                    forms.add(form)
        self.forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text


def sent_values(
    data: Any, *, public_fields: frozenset[str], base64_fields: frozenset[str]
) -> list[str]:
    """Every string in a JSON body except under `public_fields`; a `base64_fields` value also
    decoded, as a whole and line by line (a compose file's lines)."""
    found: list[str] = []

    def walk(value: Any, key: str = "") -> None:
        if key in public_fields:
            return
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, str(name))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, key)
        elif isinstance(value, str):
            found.append(value)
            if key in base64_fields:
                found.extend(_decoded(value))

    walk(data)
    return found


def _decoded(value: str) -> list[str]:
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return []
    return [text, *(line.strip() for line in text.splitlines())]


class JsonHttpClient:
    service = "remote"
    # JSON keys whose values a remote's errors may name and an operator needs to read.
    public_fields: frozenset[str] = frozenset()
    # JSON keys holding base64 text (scrubbed decoded too).
    base64_fields: frozenset[str] = frozenset()
    # The remote's rate-limit budget as this process knows it (clients/pacing.py); None: the
    # remote announces no limit, calls go at once.
    pacer: RatePacer | None = None
    # Whose work this client's paced calls are, unless `pacing.calls_as` says otherwise.
    priority: str = INTERACTIVE

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
        pace: bool = True,
    ) -> httpx.Response:
        """One logical call; raises a ClientError subclass for anything but `expect`.

        `pace=False` for a route outside the paced budget (it has a limit of its own)."""
        attempt = 0
        scrub: Scrubber | None = None
        while True:
            attempt += 1
            try:
                response = self._send(method, path, json=json, params=params, pace=pace)
            except ClientError as error:
                if not self._should_retry(error, attempt, idempotent=idempotent):
                    raise
                self._back_off(error, attempt)
                continue
            if response.status_code in expect:
                return response
            scrub = scrub or self.scrubber(json)
            error = self._error_from(response, method, path, scrub)
            if not self._should_retry(error, attempt, idempotent=idempotent):
                raise error
            self._back_off(error, attempt)

    def _send(
        self, method: str, path: str, *, json: Any, params: Any, pace: bool = True
    ) -> httpx.Response:
        """One attempt, within the rate-limit budget when the remote has one."""
        pacer = self.pacer if pace else None
        if pacer is None:
            return self._transmit(method, path, json=json, params=params)
        pacer.before_call(self.sleep, call_priority(self.priority))
        response: httpx.Response | None = None
        try:
            response = self._transmit(method, path, json=json, params=params)
        finally:
            if response is None:
                pacer.after_call(None, {})
            else:
                pacer.after_call(response.status_code, response.headers)
        return response

    def _transmit(self, method: str, path: str, *, json: Any, params: Any) -> httpx.Response:
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

    def scrubber(self, json: Any) -> Scrubber:
        """What must not come back from this request: the body's values and the token."""
        values = sent_values(
            json, public_fields=self.public_fields, base64_fields=self.base64_fields
        )
        for header in self.auth_headers().values():
            values += [header, header.partition(" ")[2]]
        return Scrubber(values)

    def _error_from(
        self, response: httpx.Response, method: str, path: str, scrub: Scrubber
    ) -> ClientError:
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
        message = scrub(message)
        field_errors = {
            scrub(name): [scrub(text) for text in texts] for name, texts in field_errors.items()
        }
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
