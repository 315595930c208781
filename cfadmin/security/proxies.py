"""The client's address as cfadmin records it: behind trusted proxies only, X-Forwarded-For."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

USER_AGENT_MAX = 255


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(ip in network for network in settings.TRUSTED_PROXIES)


def client_address(request: HttpRequest) -> str | None:
    """The peer's address; when the peer is a trusted proxy, the nearest untrusted address in
    X-Forwarded-For (read right to left, since a client can write anything on the left).

    None when there is no IP address to name: a request that did not come over the network
    (Django's test client's login) or over a Unix socket.
    """
    peer = _ip(request.META.get("REMOTE_ADDR") or "")
    if peer is None or not _trusted(peer):
        return str(peer) if peer is not None else None
    hops = (hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(","))
    for hop in reversed([hop for hop in hops if hop]):
        ip = _ip(hop)
        if ip is None:
            break  # a proxy that forwards garbage: keep what we know
        if not _trusted(ip):
            return str(ip)
    return str(peer)


def user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX]
