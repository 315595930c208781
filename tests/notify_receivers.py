"""Real receivers on loopback for notification tests: an SMTP server (aiosmtpd) that keeps the
messages it gets, and an HTTP server that keeps the requests it gets (webhooks, ntfy) and can be
told to fail the next N requests."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content.decode("utf-8", "replace")
        self.raw.append(content)
        self.messages.append(email.message_from_string(content, policy=email.policy.default))
        return "250 OK"


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: _Mailbox

    @property
    def messages(self) -> list[EmailMessage]:
        return self.mailbox.messages

    @property
    def raw(self) -> list[str]:
        """Every message as received (headers and encoded body): search these for canaries."""
        return self.mailbox.raw

    def bodies(self) -> list[str]:
        texts = []
        for message in self.messages:
            part = message.get_body(preferencelist=("plain", "html"))
            texts.append(part.get_content() if part is not None else "")
        return texts


@pytest.fixture
def smtp_server(settings) -> SmtpServer:
    """A real SMTP server on a free loopback port; Django's e-mail settings point at it."""
    mailbox = _Mailbox()
    with socket.socket() as probe:  # aiosmtpd's controller needs a known port to start on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    yield SmtpServer("127.0.0.1", port, mailbox)
    controller.stop()


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class WebhookReceiver:
    host: str
    port: int
    requests: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with 500 (then succeed)
    status_on_failure: int = 500

    def url(self, path: str = "/hook", scheme: str = "json") -> str:
        """An apprise URL to this receiver (json://, form://, ntfy://…)."""
        return f"{scheme}://{self.host}:{self.port}{path}"

    def bodies(self) -> list[str]:
        return [request.text for request in self.requests]


@pytest.fixture
def webhook_receiver() -> WebhookReceiver:
    """A real HTTP server on a free loopback port keeping every request it gets."""
    receiver = WebhookReceiver("127.0.0.1", 0)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                receiver.requests.append(
                    Received(self.command, self.path, dict(self.headers.items()), body)
                )
                failing = receiver.fail_next > 0
                if failing:
                    receiver.fail_next -= 1
            self.send_response(receiver.status_on_failure if failing else 200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        do_POST = do_PUT = do_GET = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
