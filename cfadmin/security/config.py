"""Parsers for the security settings. No Django imports: cfadmin/settings.py uses them."""

from __future__ import annotations

import ipaddress

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What django-axes can count failed logins by.
LOCKOUT_FIELDS = ("username", "ip_address", "user_agent")


def parse_trusted_proxies(value: str) -> tuple[IPNetwork, ...]:
    """'10.0.1.0/24, 127.0.0.1' -> networks. Empty: no proxy is trusted.

    '*' (which gunicorn accepts) is refused: trusting every peer would let any client choose
    the address that login lockout and the audit trail record.
    """
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if item == "*":
            raise ValueError(
                "'*' would trust X-Forwarded-For from any client; list the addresses or "
                "networks of the proxies in front of cfadmin, e.g. 10.0.1.0/24"
            )
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def parse_lockout_parameters(items: list[str]) -> list[str | list[str]]:
    """['username', 'ip_address+user_agent'] -> django-axes' AXES_LOCKOUT_PARAMETERS."""
    parameters: list[str | list[str]] = []
    for item in (part.strip() for part in items):
        if not item:
            continue
        fields = [field.strip() for field in item.split("+")]
        unknown = [field for field in fields if field not in LOCKOUT_FIELDS]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} is not one of {', '.join(LOCKOUT_FIELDS)} "
                "(separate rules with commas, join fields of one rule with +)"
            )
        parameters.append(fields[0] if len(fields) == 1 else fields)
    if not parameters:
        raise ValueError("name at least one of " + ", ".join(LOCKOUT_FIELDS))
    return parameters
