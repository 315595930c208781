"""Input rules shared by every app. Each error names the rule that was broken."""

from __future__ import annotations

import re

import idna
from django.core.exceptions import ValidationError

DNS_LABEL_MAX = 63
DOMAIN_MAX = 253
ENV_VALUE_MAX_BYTES = 32 * 1024

_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_ENV_KEY = re.compile(r"[A-Z_][A-Z0-9_]*")
_COMPOSE_SERVICE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def validate_dns_label(value: str) -> None:
    """A DNS label: lowercase letters, digits and hyphens, 1-63, no hyphen at either end."""
    if not value:
        raise ValidationError("Must not be empty.", code="required")
    if len(value) > DNS_LABEL_MAX:
        raise ValidationError(
            "Must be at most %(max)d characters (a DNS label); this one has %(length)d.",
            code="dns_label_length",
            params={"max": DNS_LABEL_MAX, "length": len(value)},
        )
    if value.startswith("-") or value.endswith("-"):
        raise ValidationError(
            "Must not start or end with a hyphen (a DNS label).", code="dns_label_hyphen"
        )
    if not _DNS_LABEL.fullmatch(value):
        raise ValidationError(
            "Use only lowercase letters a-z, digits 0-9 and hyphens (a DNS label), "
            "e.g. customer-123.",
            code="dns_label_chars",
        )


def normalize_domain(value: str) -> str:
    """Validate a host name and return its lowercase ASCII (IDNA) form.

    Accepts internationalised names (bücher.example → xn--bcher-kva.example); refuses schemes,
    ports, paths, wildcards, IP addresses and single-label names, each with its own message.
    """
    raw = (value or "").strip()
    if not raw:
        raise ValidationError("Must not be empty.", code="required")
    if "://" in raw:
        raise ValidationError(
            "Enter a host name only, without a scheme such as https://.", code="domain_scheme"
        )
    if "*" in raw:
        raise ValidationError("Wildcard domains are not allowed.", code="domain_wildcard")
    if "/" in raw or "?" in raw or "#" in raw:
        raise ValidationError("Enter a host name only, without a path.", code="domain_path")
    if ":" in raw:
        raise ValidationError("Enter a host name only, without a port.", code="domain_port")
    if any(ch.isspace() for ch in raw) or _CONTROL_CHARS.search(raw):
        raise ValidationError("A host name cannot contain spaces.", code="domain_chars")
    host = raw.rstrip(".")
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValidationError(
            "Not a valid host name: %(reason)s.", code="domain_invalid", params={"reason": exc}
        ) from exc
    ascii_host = ascii_host.lower()
    if len(ascii_host) > DOMAIN_MAX:
        raise ValidationError(
            "A host name is at most %(max)d characters.",
            code="domain_length",
            params={"max": DOMAIN_MAX},
        )
    labels = ascii_host.split(".")
    if len(labels) < 2:
        raise ValidationError(
            "Enter a fully qualified host name such as demo.customer123.com.",
            code="domain_single_label",
        )
    for label in labels:
        if not label or len(label) > DNS_LABEL_MAX or not _DNS_LABEL.fullmatch(label):
            raise ValidationError(
                "Each part of a host name is 1-63 letters, digits or hyphens, "
                "not starting or ending with a hyphen: %(label)r is not.",
                code="domain_label",
                params={"label": label},
            )
    if labels[-1].isdigit():
        raise ValidationError("IP addresses are not allowed; enter a host name.", code="domain_ip")
    return ascii_host


def validate_domain(value: str) -> None:
    normalize_domain(value)


def validate_compose_service_name(value: str) -> None:
    """A docker compose service name as our templates use them: lowercase, digits, - and _."""
    if not value or len(value) > DNS_LABEL_MAX or not _COMPOSE_SERVICE.fullmatch(value):
        raise ValidationError(
            "Must be a compose service name: 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit (e.g. webui).",
            code="compose_service",
        )


def validate_env_key(value: str) -> None:
    if not value or not _ENV_KEY.fullmatch(value):
        raise ValidationError(
            "Environment variable names use A-Z, 0-9 and _, and do not start with a digit "
            "(e.g. ANTHROPIC_API_KEY).",
            code="env_key",
        )


# Characters Laravel's Str::trim removes besides white space (TrimStrings, app/Http/Kernel.php).
_TRIMMED_INVISIBLES = "\ufeff\u200b\u200e"


def validate_env_value(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("A value must not contain a NUL character.", code="env_value_nul")
    if value != value.strip().strip(_TRIMMED_INVISIBLES):
        # Coolify trims every request string (TrimStrings middleware) and again when it stores
        # an env value (EnvironmentVariable::value): the container would get another value.
        raise ValidationError(
            "A value must not start or end with spaces or line breaks: Coolify removes them, "
            "so the container would get a different value. Remove them (or paste it again).",
            code="env_value_padding",
        )
    size = len(value.encode("utf-8"))
    if size > ENV_VALUE_MAX_BYTES:
        raise ValidationError(
            "A value is at most 32 KiB (%(max)d bytes); this one has %(size)d.",
            code="env_value_size",
            params={"max": ENV_VALUE_MAX_BYTES, "size": size},
        )


def validate_single_line_text(value: str) -> None:
    """Names shown to people and sent to remote APIs: no control characters or newlines."""
    if _CONTROL_CHARS.search(value or ""):
        raise ValidationError(
            "Must be a single line without control characters.", code="control_chars"
        )
