"""System checks for configuration that would otherwise fail later, at 3 a.m."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured


@register()
def check_secret_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from cfadmin import encryption

    messages: list[CheckMessage] = []
    try:
        encryption.encrypt("check")
    except ImproperlyConfigured as exc:
        messages.append(Error(str(exc), id="cfadmin.E001"))
    if getattr(settings, "SECRETS_ENCRYPTION_KEYS_ARE_DEV_FALLBACK", False):
        messages.append(
            Warning(
                "SECRETS_ENCRYPTION_KEYS is not set; secrets are encrypted with a development "
                "key derived from SECRET_KEY.",
                hint="Set SECRETS_ENCRYPTION_KEYS (see .env.example) before storing real secrets.",
                id="cfadmin.W001",
            )
        )
    return messages
