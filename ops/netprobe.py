"""DNS and HTTPS probes of customers' domains, loopback-safe.

A customer's domain is on the internet. cfadmin only probes it when PROBE_EXTERNAL is on, or
when PROBE_RESOLVE maps the host to an address (tests and staging map to 127.0.0.1), so no
test and no default ever leaves the machine.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings


class ProbeSkipped(Exception):
    """The probe would reach the internet and external probes are off."""


@dataclass(frozen=True)
class Target:
    host: str
    address: str
    port: int


def resolve(host: str, port: int = 443) -> Target:
    override = settings.PROBE_RESOLVE.get(host)
    if override:
        address, _, mapped_port = override.partition(":")
        return Target(host, address, int(mapped_port or port))
    if not settings.PROBE_EXTERNAL:
        raise ProbeSkipped(f"{host}: external probes are off (set PROBE_EXTERNAL=true)")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return Target(host, str(infos[0][4][0]), port)


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.PROBE_CA_FILE or None)
    return context


def https_certificate(target: Target, *, timeout: float) -> dict[str, Any]:
    """Connect with SNI, verify the chain and name; return expiry facts. Raises on failure."""
    with (
        socket.create_connection((target.address, target.port), timeout=timeout) as raw,
        tls_context().wrap_socket(raw, server_hostname=target.host) as tls,
    ):
        certificate = tls.getpeercert()
        tls.sendall(f"HEAD / HTTP/1.1\r\nHost: {target.host}\r\nConnection: close\r\n\r\n".encode())
        status_line = tls.recv(256).split(b"\r\n", 1)[0].decode(errors="replace")
    not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(certificate["notAfter"]), UTC)
    days_left = (not_after - datetime.now(UTC)).days
    return {
        "host": target.host,
        "address": f"{target.address}:{target.port}",
        "not_after": not_after.isoformat(),
        "days_left": days_left,
        "http_status": status_line,
    }


def serves_https(host: str, *, timeout: float) -> tuple[bool, dict[str, Any]]:
    """(True, facts) when the host answers HTTPS with a valid certificate."""
    target = resolve(host)
    try:
        return True, https_certificate(target, timeout=timeout)
    except (OSError, ssl.SSLError) as exc:
        return False, {
            "host": host,
            "address": f"{target.address}:{target.port}",
            "error": f"{type(exc).__name__}: {exc}",
        }
