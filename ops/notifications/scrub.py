"""Keeping a channel URL's secrets out of what people and logs see.

A channel URL carries its token anywhere: the user and password, the "host" (slack://TOKEN/…,
tgram://BOT:TOKEN/…), the path (json://host/hook/TOKEN) or the query (?token=…). So the hint
shows a scheme and a real server name only, and error text is cleaned of every part of the URL
that is not such a server name (each piece also as percent-encoded and -decoded). While a send
is in progress (`sending(url)`), log records of apprise are captured instead of logged, and
those of urllib3 (which logs request paths at DEBUG) are scrubbed."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
from collections.abc import Iterator
from contextvars import ContextVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from cfadmin.encryption import MASK

# Shorter pieces are no secret worth the mangled text ("POST", "yes"…).
MIN_PIECE = 4
# Schemes whose host part is a server (shown in the hint), not a token.
SERVER_SCHEMES = frozenset(
    {"json", "jsons", "form", "forms", "xml", "xmls", "ntfy", "ntfys", "mmost", "mmosts"}
    | {"mailto", "mailtos", "http", "https", "workflow", "workflows", "gotify", "gotifys"}
)
APPRISE_LOGGER = "apprise"
# Loggers that may print a request path (the token) while apprise sends.
SCRUBBED_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)
# apprise's debug lines that explain a failure (the network error, the service's answer).
DETAIL_PREFIXES = ("Socket Exception:", "Response Details:")
DETAIL_MAX = 200
_HOST_RE = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")


def _netloc_parts(netloc: str) -> tuple[str, str, str]:
    """(userinfo, host, port) without urlsplit's port parsing (tgram://BOT:TOKEN is no port)."""
    userinfo, _, hostport = netloc.rpartition("@")
    if hostport.startswith("["):  # an IPv6 literal
        host, _, rest = hostport[1:].partition("]")
        return userinfo, host, rest.lstrip(":")
    host, _, port = hostport.partition(":")
    return userinfo, host, port


def _is_server(scheme: str, host: str) -> bool:
    """Whether the host part names a server (safe to show) rather than carrying a token."""
    if scheme.lower() not in SERVER_SCHEMES or not host:
        return False
    host = host.lower()
    if host == "localhost" or _HOST_RE.match(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def hint(url: str) -> str:
    """The URL as shown: scheme and server (and port) only, everything else ••••."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower() or "?"
    _, host, port = _netloc_parts(parts.netloc)
    if not _is_server(scheme, host):
        return f"{scheme}://{MASK}"
    server = f"{host}:{port}" if port.isdigit() else host
    has_more = bool(parts.path.strip("/") or parts.query or "@" in parts.netloc)
    return f"{scheme}://{server}/{MASK}" if has_more else f"{scheme}://{server}"


def secret_pieces(url: str) -> list[str]:
    """Every part of the URL that may be secret, longest first, in the forms it may be
    written in an error message."""
    url = url.strip()
    parts = urlsplit(url)
    userinfo, host, port = _netloc_parts(parts.netloc)
    pieces = {url, url.partition("://")[2], parts.path, parts.query}
    if userinfo:
        pieces |= {userinfo, *userinfo.split(":", 1)}
    if not _is_server(parts.scheme, host):
        pieces |= {parts.netloc, host, port}
    elif port and not port.isdigit():
        pieces.add(port)
    pieces |= set(parts.path.split("/"))
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        pieces |= {value, f"{key}={value}"}
    variants = set()
    for piece in pieces:
        variants |= {piece, unquote(piece), quote(piece, safe=""), quote(piece, safe="/:@")}
    return sorted((p for p in variants if len(p) >= MIN_PIECE), key=len, reverse=True)


def scrub(text: str, *urls: str, extra: tuple[str, ...] = ()) -> str:
    """`text` with every secret piece of `urls` (and the `extra` values) replaced by ••••."""
    pieces = [piece for url in urls if url for piece in secret_pieces(url)]
    pieces += [value for value in extra if value and len(value) >= MIN_PIECE]
    for piece in sorted(set(pieces), key=len, reverse=True):
        text = text.replace(piece, MASK)
    return text


# The send in progress in this context: its URL, and apprise's captured messages.
_sending: ContextVar[tuple[str, list[str]] | None] = ContextVar("notify_sending", default=None)


class _AppriseGate(logging.Filter):
    """apprise's log never reaches a handler (it may quote the URL); during a send its
    warnings and errors are kept for the error text."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _sending.get()
        if current is not None:
            message = record.getMessage()
            if record.levelno >= logging.WARNING or message.startswith(DETAIL_PREFIXES):
                current[1].append(scrub(" ".join(message.split())[:DETAIL_MAX], current[0]))
        return False


class _ScrubFilter(logging.Filter):
    """During a send, a record's text is scrubbed of the URL's secrets before it is logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _sending.get()
        if current is not None:
            record.msg, record.args = scrub(record.getMessage(), current[0]), ()
        return True


def install_log_gates() -> None:
    """Idempotent: attach the filters (once per logger, also across module reloads)."""
    gates = [(APPRISE_LOGGER, _AppriseGate)] + [(name, _ScrubFilter) for name in SCRUBBED_LOGGERS]
    for name, gate in gates:
        logger = logging.getLogger(name)
        if not any(type(f).__name__ == gate.__name__ for f in logger.filters):
            logger.addFilter(gate())
    # The error text is made of its warnings and some debug details, whatever the root
    # logger's level (no record gets past the gate).
    logging.getLogger(APPRISE_LOGGER).setLevel(logging.DEBUG)


@contextlib.contextmanager
def sending(url: str) -> Iterator[list[str]]:
    """Within the block, apprise's warnings go into the yielded list (scrubbed), not the log."""
    captured: list[str] = []
    token = _sending.set((url, captured))
    try:
        yield captured
    finally:
        _sending.reset(token)


install_log_gates()
