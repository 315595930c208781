"""`make run`'s local mail catcher: an SMTP server on loopback (aiosmtpd, in a thread of
runlocal) that takes every e-mail cfadmin sends in development, prints one line per message
("✉ mail to …: subject") and keeps each as an .eml file in data/mailbox/. Nothing leaves the
machine."""

from __future__ import annotations

import email
import email.policy
import itertools
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"
PREFERRED_PORT = 1025  # the usual development port; a free one when it is taken
MAILBOX = "mailbox"


def free_port(preferred: int = PREFERRED_PORT) -> int:
    """`preferred` when nothing listens on it, else a free loopback port."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError("no free loopback port for the mail catcher")


class _Mailbox:
    """aiosmtpd's handler: keep the message, say so."""

    def __init__(self, folder: Path, say: Callable[[str], None]) -> None:
        self.folder = folder
        self.say = say
        self.numbers = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.content
        message = email.message_from_bytes(content, policy=email.policy.default)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{stamp}-{next(self.numbers):04d}.eml"
        path.write_bytes(content)
        subject = " ".join(str(message.get("Subject", "")).split()) or "(no subject)"
        self.say(f"✉ mail to {', '.join(envelope.rcpt_tos)}: {subject}  [{path.name}]")
        return "250 Message accepted"


class MailCatcher:
    """Start, then point EMAIL_HOST/EMAIL_PORT at `host`/`port`; `stop()` when done."""

    def __init__(self, data_dir: Path, say: Callable[[str], None]) -> None:
        self.folder = Path(data_dir) / MAILBOX
        self.say = say
        self.host = HOST
        self.port = 0
        self.controller: Controller | None = None

    def start(self) -> MailCatcher:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.controller = Controller(
            _Mailbox(self.folder, self.say), hostname=self.host, port=self.port
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def env(self) -> dict[str, str]:
        """The children's e-mail settings: plain SMTP to the catcher."""
        return {
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": str(self.port),
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_USE_TLS": "false",
        }
