"""Channels: apprise URLs (or bare e-mail addresses), stored encrypted, shown masked, sent to.

One library for every service (apprise's URL syntax: json://, slack://, tgram://, ntfy://,
mailto://…); a bare address is sent with Django's mail and the EMAIL_* settings. A URL is
never put in an error, a log line or a row: errors name the field and the rule, and send
errors are scrubbed of every secret part of the URL (ops.notifications.scrub)."""

from __future__ import annotations

import logging

import apprise
from apprise.manager_plugins import NotificationManager
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email

from cfadmin.encryption import InvalidToken, decrypt, encrypt
from ops.models.notifications import ChannelKind, NotificationChannel
from ops.notifications import scrub

logger = logging.getLogger(__name__)

URL_MAX_LENGTH = 2000
ERROR_MAX = 500
# apprise recognises some services' own https:// webhook addresses (hooks.slack.com…).
NATIVE_SCHEMES = ("http", "https")  # Notification.last_error's length
# apprise schemes (protocol or secure protocol) -> the kind shown and filtered on.
KIND_OF_SCHEME = {
    **dict.fromkeys(("mailto", "mailtos"), ChannelKind.EMAIL),
    **dict.fromkeys(("json", "jsons", "form", "forms"), ChannelKind.WEBHOOK),
    "slack": ChannelKind.SLACK,
    **dict.fromkeys(("mmost", "mmosts"), ChannelKind.MATTERMOST),
    **dict.fromkeys(("msteams", "workflow", "workflows"), ChannelKind.TEAMS),
    "discord": ChannelKind.DISCORD,
    "tgram": ChannelKind.TELEGRAM,
    **dict.fromkeys(("ntfy", "ntfys"), ChannelKind.NTFY),
}


def _bare_address(url: str) -> str:
    """The e-mail address a value names ("ops@example.com" or "mailto:ops@example.com"),
    else ""."""
    value = url.strip()
    if value.lower().startswith("mailto:") and not value[7:].startswith("//"):
        value = value[7:]
    if "://" in value or "@" not in value:
        return ""
    try:
        validate_email(value)
    except ValidationError:
        return ""
    return value


def _schemes(plugin: object) -> set[str]:
    schemes: set[str] = set()
    for attribute in ("protocol", "secure_protocol"):
        value = getattr(plugin, attribute, None)
        schemes |= {value} if isinstance(value, str) else set(value or ())
    return schemes


def _plugin(url: str) -> object | None:
    """apprise's notifier for the URL, or None; apprise's own log stays closed (it may quote
    the URL)."""
    with scrub.sending(url):
        return apprise.Apprise.instantiate(url)


def _invalid(message: str) -> ValidationError:
    return ValidationError({"url": message}, code="invalid")


def kind_of(url: str) -> ChannelKind:
    """The kind of a channel URL; ValidationError({"url": ...}) naming the rule when apprise
    cannot read it. The URL itself never appears in the error."""
    value = (url or "").strip()
    if not value:
        raise _invalid("Enter the channel's URL (apprise syntax) or an e-mail address.")
    if len(value) > URL_MAX_LENGTH:
        raise _invalid(f"The URL is longer than {URL_MAX_LENGTH} characters.")
    if any(char.isspace() for char in value):
        raise _invalid("The URL may not contain spaces or line breaks.")
    if _bare_address(value):
        return ChannelKind.EMAIL
    if "://" not in value:
        raise _invalid(
            "Not an e-mail address and not a URL: write scheme://… in apprise's syntax "
            "(json://host/path, slack://…, tgram://…, ntfy://…, mailto://…)."
        )
    scheme = value.split("://", 1)[0].lower()
    if scheme not in NotificationManager() and scheme not in NATIVE_SCHEMES:
        raise _invalid(
            "Unknown scheme: apprise has no service for it (use json://, jsons://, slack://, "
            "mmost://, workflows://, discord://, tgram://, ntfy://, mailto://… or an https:// "
            "webhook address apprise recognises)."
        )
    plugin = _plugin(value)
    if plugin is None:
        raise _invalid(
            "apprise cannot read this URL: a part its service requires (host, token, "
            "channel…) is missing or malformed; see apprise's syntax for the service."
        )
    return next(
        (KIND_OF_SCHEME[s] for s in sorted(_schemes(plugin)) if s in KIND_OF_SCHEME),
        ChannelKind.OTHER,
    )


def hint_of(url: str) -> str:
    """What is shown of a URL: an e-mail address itself, else its scheme and server only."""
    return _bare_address(url) or scrub.hint(url)


def set_url(channel: NotificationChannel, url: str) -> None:
    """Validate `url`, store it encrypted with its kind and masked hint (does not save)."""
    value = url.strip()
    channel.kind = kind_of(value)
    address = _bare_address(value)
    if address:  # "mailto:x@y" is stored as the address it names
        value = address
    channel.url_encrypted = encrypt(value)
    channel.url_hint = hint_of(value)[:200]


def url_of(channel: NotificationChannel) -> str:
    """The decrypted URL (InvalidToken propagates)."""
    return decrypt(channel.url_encrypted)


def _message_text(body: str, link: str) -> str:
    return f"{body}\n\n{link}" if link else body


def _send_mail(address: str, title: str, body: str, link: str) -> tuple[bool, str]:
    try:
        sent = EmailMessage(
            subject=title,
            body=_message_text(body, link),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
        ).send()
    except Exception as exc:  # any SMTP or network error is the outcome, not a crash
        text = f"SMTP {settings.EMAIL_HOST}:{settings.EMAIL_PORT}: {type(exc).__name__}: {exc}"
        return False, scrub.scrub(text, extra=(settings.EMAIL_HOST_PASSWORD,))[:ERROR_MAX]
    return (True, "") if sent else (False, "The mail server accepted no recipient.")


def _send_apprise(url: str, title: str, body: str, link: str) -> tuple[bool, str]:
    with scrub.sending(url) as captured:
        try:
            plugin = apprise.Apprise.instantiate(url)
            if plugin is None:
                return False, "The channel's URL is not one apprise can send to any more."
            # Our bound on a slow service, whatever the URL asks for.
            plugin.socket_connect_timeout = settings.NOTIFY_TIMEOUT_SECONDS
            plugin.socket_read_timeout = settings.NOTIFY_TIMEOUT_SECONDS
            ok = plugin.notify(body=_message_text(body, link), title=title)
        except Exception as exc:  # a plugin bug or a network error is the outcome
            captured.append(scrub.scrub(f"{type(exc).__name__}: {exc}", url))
            ok = False
    if ok:
        return True, ""
    text = " / ".join(dict.fromkeys(captured)) or "The service did not accept the message."
    return False, scrub.scrub(text, url)[:ERROR_MAX]


def send(
    target: NotificationChannel | str, title: str, body: str, link: str = ""
) -> tuple[bool, str]:
    """Send one message to a channel or a bare e-mail address: (ok, error text scrubbed of
    every secret part of the URL). Never raises for a delivery failure."""
    if isinstance(target, NotificationChannel):
        try:
            url = url_of(target)
        except InvalidToken:
            return False, "The channel's URL cannot be decrypted (SECRETS_ENCRYPTION_KEYS?)."
    else:
        url = target
    address = _bare_address(url)
    if address:
        ok, error = _send_mail(address, title, body, link)
    else:
        ok, error = _send_apprise(url, title, body, link)
    if not ok:
        logger.warning("Notification to %s failed: %s", hint_of(url), error)
    return ok, error
