"""DNS and HTTPS probes of customers' domains, loopback-safe.

A customer's domain is on the internet. cfadmin only probes it when PROBE_EXTERNAL is on, or
when PROBE_RESOLVE maps the host to an address (tests and staging map to 127.0.0.1), so no
test and no default ever leaves the machine.

Probes reach only the public internet: a domain is anyone's to point anywhere, and one that
resolves to cfadmin's own machine, its private network or a cloud metadata address
(169.254.169.254) would turn a probe into a request from inside. Such a domain is refused unless
PROBE_RESOLVE maps it explicitly; the probe connects to the very address that was checked, so a
second DNS answer (rebinding) never reaches the connection.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProbeSkipped(Exception):
    """The probe would reach the internet and external probes are off."""


class ProbeRefused(OSError):
    """The domain resolves to an address that is not on the public internet."""


def non_public_reason(address: str) -> str | None:
    """Why an address is not a public one (`loopback`, `private`…), or None if it is."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("shared", isinstance(ip, ipaddress.IPv4Address) and ip in SHARED_ADDRESS_SPACE),
        ("reserved", ip.is_reserved),  # before private: Python counts 240.0.0.0/4 as both
        ("private", ip.is_private),
        ("not global", not ip.is_global),
    )
    return next((reason for reason, applies in checks if applies), None)


@dataclass(frozen=True)
class Target:
    host: str
    address: str
    port: int


def resolve(host: str, port: int = 443) -> Target:
    """Where to connect for `host`: its PROBE_RESOLVE mapping (any address: the operator chose
    it), or its DNS answer when every address in it is public; raises ProbeRefused otherwise."""
    override = settings.PROBE_RESOLVE.get(host)
    if override:
        address, _, mapped_port = override.partition(":")
        return Target(host, address, int(mapped_port or port))
    if not settings.PROBE_EXTERNAL:
        raise ProbeSkipped(f"{host}: external probes are off (set PROBE_EXTERNAL=true)")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:  # one private answer is enough to refuse: any may be used
        reason = non_public_reason(address)
        if reason:
            raise ProbeRefused(
                f"refused: {host} resolves to {address} ({reason}); "
                "probes reach only public addresses"
            )
    return Target(host, addresses[0], port)


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.PROBE_CA_FILE or None)
    return context


def _left(deadline: float) -> float:
    """Seconds until `deadline` (time.monotonic); TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the probe's time is up")
    return left


def https_certificate(target: Target, *, timeout: float) -> dict[str, Any]:
    """Connect with SNI, verify the chain and name; return expiry facts. Raises on failure.

    `timeout` bounds the whole probe (connect, handshake, request, first answer), not each
    step, so a probe never outlives the time it was given."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((target.address, target.port), timeout=_left(deadline)) as raw:
        raw.settimeout(_left(deadline))  # the TLS handshake reads and writes on this socket
        with tls_context().wrap_socket(raw, server_hostname=target.host) as tls:
            certificate = tls.getpeercert()
            tls.settimeout(_left(deadline))
            tls.sendall(
                f"HEAD / HTTP/1.1\r\nHost: {target.host}\r\nConnection: close\r\n\r\n".encode()
            )
            tls.settimeout(_left(deadline))
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


@dataclass(frozen=True)
class HttpsProbe:
    """One HTTPS probe: whether it served, its facts, and whether it failed by running out of
    time (a caller that cut the time short may call that inconclusive)."""

    ok: bool
    facts: dict[str, Any]
    timed_out: bool = False


def probe_https(host: str, *, timeout: float) -> HttpsProbe:
    """Probe `host` within `timeout` seconds in all. Raises ProbeSkipped or ProbeRefused (see
    resolve) without connecting."""
    target = resolve(host)
    try:
        return HttpsProbe(True, https_certificate(target, timeout=timeout))
    except (OSError, ssl.SSLError) as exc:
        return HttpsProbe(
            False,
            {
                "host": host,
                "address": f"{target.address}:{target.port}",
                "error": f"{type(exc).__name__}: {exc}",
            },
            timed_out=isinstance(exc, TimeoutError),
        )


def serves_https(host: str, *, timeout: float) -> tuple[bool, dict[str, Any]]:
    """(True, facts) when the host answers HTTPS with a valid certificate. Raises ProbeSkipped
    or ProbeRefused (see resolve) without connecting."""
    probe = probe_https(host, timeout=timeout)
    return probe.ok, probe.facts
