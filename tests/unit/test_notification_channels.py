"""Notification channels: what a URL is, how it is kept (encrypted, masked) and how a message
reaches a real webhook receiver and a real SMTP server on loopback, with no secret in errors
or logs."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ValidationError

from cfadmin.encryption import decrypt
from ops.models import EscalationContact
from ops.models.notifications import ChannelKind, NotificationChannel
from ops.notifications import channels, scrub

CANARY = "canaryTOKEN7f3a9e1b"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("ops@example.com", ChannelKind.EMAIL),
        ("mailto:ops@example.com", ChannelKind.EMAIL),
        ("mailto://user:pw@mail.example.com?to=ops@example.com", ChannelKind.EMAIL),
        ("json://hooks.example.com/notify", ChannelKind.WEBHOOK),
        ("jsons://hooks.example.com/notify", ChannelKind.WEBHOOK),
        ("form://127.0.0.1:8080/in", ChannelKind.WEBHOOK),
        ("slack://T000A/B000B/XXXXXXXXXXXX", ChannelKind.SLACK),
        ("https://hooks.slack.com/services/T000A/B000B/XXXXXXXXXXXX", ChannelKind.SLACK),
        ("mmost://chat.example.com/abcdefghijkl", ChannelKind.MATTERMOST),
        ("workflows://prod.example.com:443/workflowid/signature", ChannelKind.TEAMS),
        ("discord://123456789/abcdefghijk", ChannelKind.DISCORD),
        ("https://discord.com/api/webhooks/123456789/abcdefghijk", ChannelKind.DISCORD),
        ("tgram://123456789:ABCdefGHI/987654", ChannelKind.TELEGRAM),
        ("ntfy://ntfy.example.com/alerts", ChannelKind.NTFY),
        ("gotify://push.example.com/abcdefghijklmno", ChannelKind.OTHER),
    ],
)
def test_kind_is_detected_from_the_url(url, kind):
    assert channels.kind_of(url) == kind


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("", "Enter the channel's URL"),
        (f"bogus://{CANARY}", "Unknown scheme"),
        (f"https://example.com/{CANARY}", "apprise cannot read this URL"),
        ("slack://", "apprise cannot read this URL"),
        (f"not an address {CANARY}", "spaces or line breaks"),
        (f"{CANARY}", "Not an e-mail address and not a URL"),
        ("json://h.example.com/" + "a" * 2001, "longer than 2000 characters"),
    ],
)
def test_a_url_apprise_cannot_read_is_refused_naming_the_field_and_the_rule(url, rule):
    with pytest.raises(ValidationError) as caught:
        channels.kind_of(url)
    errors = caught.value.message_dict
    assert list(errors) == ["url"]
    assert rule in errors["url"][0]
    assert CANARY not in str(errors)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"json://user:{CANARY}@127.0.0.1:8080/hook/{CANARY}", "json://127.0.0.1:8080/••••"),
        (f"slack://T000A/B000B/{CANARY}", "slack://••••"),
        (f"tgram://123456789:{CANARY}/987654", "tgram://••••"),
        (f"ntfy://{CANARY}", "ntfy://••••"),  # ntfy.sh: the topic is the secret
        (f"ntfy://ntfy.example.com/{CANARY}", "ntfy://ntfy.example.com/••••"),
        (f"https://hooks.slack.com/services/T000A/B000B/{CANARY}", "https://hooks.slack.com/••••"),
        ("ops@example.com", "ops@example.com"),
        ("json://hooks.example.com", "json://hooks.example.com"),
    ],
)
def test_the_hint_shows_the_scheme_and_server_only(url, shown):
    assert channels.hint_of(url) == shown


@pytest.mark.django_db
def test_the_url_is_stored_encrypted_and_never_in_a_plain_column():
    contact = EscalationContact.objects.create(issue_type="t", team="Team", response_minutes=5)
    url = f"json://127.0.0.1:9/hook/{CANARY}"
    channel = NotificationChannel(contact=contact)
    channels.set_url(channel, url)
    channel.save()
    row = NotificationChannel.objects.filter(pk=channel.pk).values().get()
    assert not any(CANARY in str(value) for value in row.values())
    assert decrypt(row["url_encrypted"]) == url
    assert channels.url_of(channel) == url
    assert (row["kind"], row["url_hint"]) == (ChannelKind.WEBHOOK, "json://127.0.0.1:9/••••")
    assert CANARY not in str(channel)


@pytest.mark.django_db
def test_a_mailto_address_is_kept_as_the_address_it_names():
    channel = NotificationChannel()
    channels.set_url(channel, "mailto:oncall@example.com")
    assert (channel.kind, channel.url_hint) == (ChannelKind.EMAIL, "oncall@example.com")
    assert channels.url_of(channel) == "oncall@example.com"


def test_a_webhook_gets_title_body_and_link(webhook_receiver):
    ok, error = channels.send(webhook_receiver.url(), "SEV1 down", "All stacks", "http://x/i/1")
    assert (ok, error) == (True, "")
    [request] = webhook_receiver.requests
    payload = request.json()
    assert (request.method, request.path) == ("POST", "/hook")
    assert payload["title"] == "SEV1 down"
    assert "All stacks" in payload["message"] and "http://x/i/1" in payload["message"]


def test_ntfy_gets_the_message_too(webhook_receiver):
    ok, _ = channels.send(webhook_receiver.url("/alerts", scheme="ntfy"), "T", "B", "http://l")
    assert ok
    [request] = webhook_receiver.requests
    assert request.json()["title"] == "T" and "http://l" in request.json()["message"]


def test_an_address_is_mailed_through_djangos_mail(smtp_server, settings):
    settings.DEFAULT_FROM_EMAIL = "cfadmin@example.com"
    ok, error = channels.send("oncall@example.com", "Outage", "PocketBase down", "http://x/o/3")
    assert (ok, error) == (True, "")
    [message] = smtp_server.messages
    assert message["To"] == "oncall@example.com" and message["Subject"] == "Outage"
    assert "PocketBase down" in smtp_server.bodies()[0]
    assert "http://x/o/3" in smtp_server.bodies()[0]


def test_a_mailto_url_is_mailed_through_apprise(smtp_server):
    url = (
        f"mailto://{smtp_server.host}:{smtp_server.port}"
        "?to=team@example.com&from=cfadmin@example.com&mode=insecure"
    )
    ok, error = channels.send(url, "Subject here", "Body here", "http://x/l")
    assert (ok, error) == (True, "")
    assert "Body here" in smtp_server.bodies()[0] and "http://x/l" in smtp_server.bodies()[0]


def test_a_failing_receiver_gives_an_error_naming_the_answer(webhook_receiver):
    webhook_receiver.fail_next = 1
    ok, error = channels.send(webhook_receiver.url(f"/hook/{CANARY}"), "T", "B")
    assert not ok
    assert "500" in error
    assert CANARY not in error


@pytest.mark.parametrize(
    "template",
    [
        "json://127.0.0.1:{port}/hook/{canary}",
        "json://admin:{canary}@127.0.0.1:{port}/hook",
        "json://{canary}:pw@127.0.0.1:{port}/hook",
        "json://127.0.0.1:{port}/hook?token={canary}",
        "mailto://user:{canary}@127.0.0.1:{port}?to=a@example.com&from=b@example.com&mode=insecure",
    ],
)
def test_a_failed_send_names_the_error_without_the_secret(template, closed_port, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="apprise")
    url = template.format(port=closed_port, canary=CANARY)
    ok, error = channels.send(url, "T", "B", "http://l")
    assert not ok
    assert "onnection" in error  # connection refused, said in the service's words
    assert CANARY not in error
    assert caplog.records  # the failure is logged, masked
    assert CANARY not in caplog.text
    assert all(CANARY not in str(r.args) for r in caplog.records)


def test_a_successful_send_logs_no_secret_even_at_debug(webhook_receiver, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="apprise")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    ok, _ = channels.send(webhook_receiver.url(f"/hook/{CANARY}"), "T", "B")
    assert ok
    assert webhook_receiver.requests[0].path == f"/hook/{CANARY}"  # it did go there
    assert CANARY not in caplog.text


def test_scrub_removes_every_form_of_a_secret():
    url = f"json://u:{CANARY}@127.0.0.1:1/a%20b/{CANARY}?key={CANARY}"
    text = f"failed {CANARY} /a b/ {url} key={CANARY} host 127.0.0.1"
    cleaned = scrub.scrub(text, url)
    assert CANARY not in cleaned
    assert "127.0.0.1" in cleaned  # a server name is no secret


@pytest.mark.django_db
def test_a_channel_whose_key_is_gone_fails_with_a_clear_error():
    channel = NotificationChannel(url_encrypted="not-a-token")
    ok, error = channels.send(channel, "T", "B")
    assert not ok and "cannot be decrypted" in error
