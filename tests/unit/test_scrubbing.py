"""Nothing sent is echoed: a remote's error text loses every value cfadmin sent in that request.

A real HTTP receiver on 127.0.0.1 answers with an error that quotes the request (its raw body,
each value, base64 decoded, and the Authorization header), as a careless remote would; the
clients must keep none of it in their errors, their log lines, or anything stored from them.
The last test deploys through the Coolify simulator with such a 422 at the set-env step and
searches the whole database and the stack's admin pages for the secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.apps import apps
from django.urls import reverse

from stacks.choices import OperationKind, OperationStatus
from stacks.clients.coolify import CoolifyClient
from stacks.clients.errors import (
    ERROR_TEXT_MAX,
    AuthenticationFailed,
    ClientError,
    ServerError,
    ValidationFailed,
)
from stacks.clients.http import REDACTED, sent_values
from stacks.clients.pocketbase import PocketBaseClient
from stacks.coolify_simulator.server import Fault
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import no_sleep

CANARY = "sk-canary-ECHOED-0123456789abcdef"
QUOTED_CANARY = 'pä"ss\\wörd-canary-4711'  # JSON-escaped in a raw body echo
TOKEN = "42|scrub-test-TOKEN-abcdef0123456789"
COMPOSE_CANARY = "note-in-compose-canary-31337"
COMPOSE = f"""\
services:
  web:
    image: nginx:1.27
    labels:
      - {COMPOSE_CANARY}
"""
PB_PASSWORD = "pb-canary-PASSWORD-5551234"
PB_EMAIL = "svc-scrub@example.com"


def everything_in(error: ClientError) -> str:
    return "\n".join(
        [
            str(error),
            repr(error),
            error.message,
            json.dumps(error.field_errors),
            *map(str, error.args),
        ]
    )


# --- a remote that echoes what it was sent ----------------------------------------------------


class EchoHandler(BaseHTTPRequestHandler):
    """Answers /status/<code>/... with that status and an echo of the request; /long with a
    very long error."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
        if self.path.startswith("/long"):
            body: dict[str, Any] = {
                "message": "x" * 5000,
                "errors": {f"field{i}": ["y" * 300] for i in range(100)},
            }
            status = 422
        else:
            status = int(self.path.split("/")[2])
            errors: dict[str, list[str]] = {}
            with contextlib.suppress(ValueError):
                leaves(json.loads(raw), "", errors)
            body = {
                "message": f"Refused ({self.headers.get('Authorization')}): {raw}",
                "errors": errors,
            }
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer


def leaves(value: Any, name: str, errors: dict[str, list[str]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            leaves(item, f"{name}.{key}".lstrip("."), errors)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            leaves(item, f"{name}.{index}", errors)
    elif isinstance(value, str):
        errors[name] = [f"The value {value} is invalid."]
        with contextlib.suppress(binascii.Error, ValueError):
            errors[f"{name}.decoded"] = [base64.b64decode(value, validate=True).decode()]


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def coolify(echo_url: str, status: int, **kwargs: Any) -> CoolifyClient:
    return CoolifyClient(f"{echo_url}/status/{status}", TOKEN, sleep=no_sleep, **kwargs)


# --- the clients ------------------------------------------------------------------------------


def test_an_env_value_echoed_in_a_422_is_nowhere_in_the_error_or_the_logs(echo_url, caplog):
    caplog.set_level(logging.DEBUG)
    with (
        coolify(echo_url, 422) as client,
        pytest.raises(ValidationFailed) as raised,
    ):
        client.upsert_service_envs(
            "svc-uuid", {"ANTHROPIC_API_KEY": CANARY, "TELEGRAM_BOT_TOKEN": QUOTED_CANARY}
        )

    text = everything_in(raised.value)
    for secret in (CANARY, QUOTED_CANARY, json.dumps(QUOTED_CANARY)[1:-1], TOKEN):
        assert secret not in text
        assert secret not in caplog.text
    assert REDACTED in raised.value.message
    # What is not a secret stays readable: the keys, and the field the remote named.
    assert "ANTHROPIC_API_KEY" in text
    assert raised.value.field_errors["data.0.value"] == [f"The value {REDACTED} is invalid."]


def test_a_retried_5xx_that_echoes_logs_nothing_it_was_sent(echo_url, caplog):
    """Retries log the error they retry; those lines are scrubbed like the final error."""
    caplog.set_level(logging.INFO, logger="stacks.clients.http")
    with coolify(echo_url, 503, attempts=3) as client, pytest.raises(ServerError) as raised:
        client.upsert_service_envs("svc-uuid", {"ANTHROPIC_API_KEY": CANARY})

    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert all(CANARY not in r.getMessage() and TOKEN not in r.getMessage() for r in retries)
    assert CANARY not in everything_in(raised.value)


def test_the_compose_file_is_scrubbed_raw_and_decoded_but_names_and_domains_stay(echo_url):
    """A domain conflict must name the domain (the operator needs it): names, uuids and
    domains are not secrets. The compose file may be, line by line."""
    with coolify(echo_url, 409) as client, pytest.raises(ClientError) as raised:
        client.create_service(
            project_uuid="proj-uuid-1",
            server_uuid="server-uuid-1",
            environment_name="production",
            name="customer-123-main",
            description="tenant customer-123",
            compose=COMPOSE,
            urls=[{"name": "web", "url": "https://demo.customer123.com"}],
        )

    text = everything_in(raised.value)
    assert COMPOSE_CANARY not in text
    assert base64.b64encode(COMPOSE.encode()).decode() not in text
    assert TOKEN not in text
    for public in ("https://demo.customer123.com", "customer-123-main", "proj-uuid-1"):
        assert public in text


def test_a_long_error_is_cut_to_the_limit(echo_url):
    with (
        CoolifyClient(f"{echo_url}/long", TOKEN, sleep=no_sleep) as client,
        pytest.raises(ValidationFailed) as raised,
    ):
        client.create_project("anything")

    error = raised.value
    assert len(error.message) == ERROR_TEXT_MAX and error.message.endswith("…")
    field_text = sum(len(name) + sum(map(len, texts)) for name, texts in error.field_errors.items())
    assert field_text <= ERROR_TEXT_MAX + 40  # the budget, and the "left out" marker
    assert "more field errors left out" in str(error)
    assert len(str(error)) < 3 * ERROR_TEXT_MAX


def test_the_pocketbase_login_never_echoes_its_password(echo_url, caplog):
    caplog.set_level(logging.DEBUG)
    with (
        PocketBaseClient(
            f"{echo_url}/status/400",
            email=PB_EMAIL,
            password=PB_PASSWORD,
            sleep=no_sleep,
        ) as client,
        pytest.raises(AuthenticationFailed) as raised,
    ):
        client.login()

    text = everything_in(raised.value)
    assert PB_PASSWORD not in text and PB_EMAIL not in text
    assert PB_PASSWORD not in caplog.text
    assert text.count(REDACTED) >= 2


def test_sent_values_skips_public_fields_and_decodes_base64_fields():
    body = {
        "name": "public-name",
        "docker_compose_raw": base64.b64encode(b"a: 1\nsecret-line: xyz\n").decode(),
        "data": [{"key": "API_KEY", "value": "v-secret"}],
        "urls": [{"name": "web", "url": "https://x.test"}],
    }

    values = sent_values(
        body,
        public_fields=frozenset({"name", "key", "urls"}),
        base64_fields=frozenset({"docker_compose_raw"}),
    )

    assert "v-secret" in values and "secret-line: xyz" in values
    assert body["docker_compose_raw"] in values
    assert not {"public-name", "API_KEY", "web", "https://x.test"} & set(values)


# --- through a deploy, into the database and the admin -------------------------------------------


def all_text_in_the_database() -> str:
    """Every row of every table cfadmin and its libraries keep, as text."""
    return "\n".join(
        json.dumps(list(model._default_manager.values()), default=str)
        for model in apps.get_models()
    )


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_deploy_refused_with_an_echo_leaves_the_secret_nowhere(
    make_stack, remote, coolify_sim, superuser, client, caplog
):
    caplog.set_level(logging.DEBUG)
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        template_name="openclaw-agent",
        domains={"webui": "demo.customer123.com"},
        secrets={"ANTHROPIC_API_KEY": CANARY, "TELEGRAM_BOT_TOKEN": QUOTED_CANARY},
    )
    coolify_sim.add_fault(
        Fault(
            path=r"/api/v1/services/[^/]+/envs/bulk",
            method="PATCH",
            kind="echo",
            status=422,
            times=None,
        )
    )
    operation = request_operation(stack, OperationKind.DEPLOY, actor=superuser)

    run_operation(
        operation.pk,
        remote=remote,
        sleep=no_sleep,
        poll_interval=0.02,
        health_timeout=1.5,
        delete_timeout=1.5,
    )

    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert "HTTP 422" in operation.error and REDACTED in operation.error
    assert [f["kind"] for f in coolify_sim.fired] and coolify_sim.fired[0]["kind"] == "echo"
    client.force_login(superuser)
    pages = [
        client.get(reverse("admin:stacks_stack_change", args=[stack.pk])),
        client.get(reverse("admin:stacks_operation_change", args=[operation.pk])),
        client.get(reverse("admin:cfadmin_auditevent_changelist")),
    ]
    assert all(page.status_code == 200 for page in pages)
    assert REDACTED in pages[0].content.decode()  # the error is shown, scrubbed
    stored = all_text_in_the_database()
    for secret in (CANARY, QUOTED_CANARY, json.dumps(QUOTED_CANARY)[1:-1]):
        assert secret not in stored
        assert secret not in caplog.text
        for page in pages:
            assert secret not in page.content.decode()
