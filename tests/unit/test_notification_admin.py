"""The channels admin (write-only URL, masked everywhere, "Send test"), the channels inline of
an escalation contact, and the read-only Notifications page with "retry now"."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter
from django_q.models import OrmQ

from cfadmin.encryption import MASK
from cfadmin.models import AuditAction, AuditEvent
from ops.models import EscalationContact
from ops.models.notifications import (
    ChannelKind,
    DeliveryStatus,
    Notification,
    NotificationChannel,
    NotifyEvent,
)
from ops.notifications import channels, delivery

pytestmark = pytest.mark.django_db
CANARY = "canaryTOKENad41f00d"
CHANNELS = reverse("admin:ops_notificationchannel_changelist")
ADD = reverse("admin:ops_notificationchannel_add")
NOTIFICATIONS = reverse("admin:ops_notification_changelist")


def change_url(channel: NotificationChannel) -> str:
    return reverse("admin:ops_notificationchannel_change", args=[channel.pk])


@pytest.fixture
def contact():
    return EscalationContact.objects.create(
        issue_type="Admin test", team="Admin Team", response_minutes=15
    )


@pytest.fixture
def admin_client(client, admin_role):
    client.force_login(admin_role)
    return client


def channel_data(contact, url: str, **extra) -> dict:
    data = {"contact": contact.pk, "user": "", "label": "pager", "url": url, "position": 0}
    data["enabled"] = "on"
    data.update(extra)
    return data


def add_channel(client, contact, url: str):
    return client.post(ADD, channel_data(contact, url))


def test_an_added_channel_shows_only_its_mask(
    admin_client, contact, webhook_receiver, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    url = webhook_receiver.url(f"/hook/{CANARY}")
    with django_capture_on_commit_callbacks(execute=True):
        response = add_channel(admin_client, contact, url)
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = NotificationChannel.objects.get()
    assert channels.url_of(channel) == url and channel.kind == ChannelKind.WEBHOOK
    pages = [admin_client.get(CHANNELS), admin_client.get(change_url(channel))]
    pages.append(admin_client.get(reverse("admin:ops_escalationcontact_change", args=[contact.pk])))
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert CANARY not in html
        assert f"json://127.0.0.1:{webhook_receiver.port}/••••" in html
    assert "Send test" in pages[1].content.decode()
    events = AuditEvent.objects.all()
    assert events and all(CANARY not in str(e.changes) + e.message for e in events)
    created = events.get(action=AuditAction.CREATE)
    assert created.changes["after"]["url_encrypted"] == MASK  # not even the ciphertext
    assert CANARY not in caplog.text


@pytest.mark.parametrize(
    ("url", "error"),
    [
        (f"bogus://{CANARY}", "Unknown scheme"),
        (f"https://example.com/{CANARY}", "apprise cannot read this URL"),
        ("", "required for a new channel"),
    ],
)
def test_a_bad_url_is_refused_without_showing_it(admin_client, contact, url, error):
    response = add_channel(admin_client, contact, url)
    html = response.content.decode()
    assert response.status_code == 200 and error in html
    assert CANARY not in html
    assert not NotificationChannel.objects.exists()


def test_a_good_url_is_not_rendered_back_after_another_fields_error(admin_client, contact):
    data = {**channel_data(contact, f"json://127.0.0.1:9/hook/{CANARY}"), "contact": ""}
    response = admin_client.post(ADD, data)
    html = response.content.decode()
    assert response.status_code == 200 and "exactly one owner" in html
    assert CANARY not in html
    assert not NotificationChannel.objects.exists()


def test_error_reports_never_show_a_posted_url(admin_client, contact):
    hidden = SafeExceptionReporterFilter()
    response = add_channel(admin_client, contact, f"bogus://{CANARY}")
    assert (
        hidden.get_post_parameters(response.wsgi_request)["url"]
        != response.wsgi_request.POST["url"]
    )
    page = reverse("admin:ops_escalationcontact_change", args=[contact.pk])
    response = admin_client.post(page, {"channels-0-url": f"json://h.example.com/{CANARY}"})
    assert CANARY not in str(hidden.get_post_parameters(response.wsgi_request))


def test_a_blank_url_on_edit_keeps_the_stored_one(admin_client, contact):
    add_channel(admin_client, contact, f"json://127.0.0.1:9/hook/{CANARY}")
    channel = NotificationChannel.objects.get()
    response = admin_client.post(change_url(channel), channel_data(contact, "", label="renamed"))
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.label == "renamed"
    assert channels.url_of(channel) == f"json://127.0.0.1:9/hook/{CANARY}"
    admin_client.post(change_url(channel), channel_data(contact, "oncall@example.com"))
    channel.refresh_from_db()
    assert (channel.kind, channel.url_hint) == (ChannelKind.EMAIL, "oncall@example.com")


def test_a_personal_channel_belongs_to_a_staff_user(admin_client, admin_role):
    data = {"contact": "", "user": admin_role.pk, "label": "me", "url": "me@example.com"}
    assert admin_client.post(ADD, {**data, "position": 0, "enabled": "on"}).status_code == 302
    channel = NotificationChannel.objects.get()
    assert channel.user == admin_role and channel.owner_repr == admin_role.username
    html = admin_client.get(CHANNELS + "?owner=user").content.decode()
    assert "me@example.com" in html
    assert "me@example.com" not in admin_client.get(CHANNELS + "?owner=contact").content.decode()


def test_send_test_queues_a_test_and_the_page_shows_its_outcome(
    admin_client, contact, webhook_receiver, django_capture_on_commit_callbacks
):
    add_channel(admin_client, contact, webhook_receiver.url(f"/hook/{CANARY}"))
    channel = NotificationChannel.objects.get()
    form = {"action": "send_test", "index": "0", "_selected_action": channel.pk, "next": "change"}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(CHANNELS, form)
    assert response.status_code == 302 and response.url == change_url(channel)
    row = Notification.objects.get()
    assert (row.event, row.channel, row.status) == (
        NotifyEvent.CHANNEL_TEST,
        channel,
        DeliveryStatus.PENDING,
    )
    assert webhook_receiver.requests == []  # nothing remote in the request
    [task] = [q.task for q in OrmQ.objects.all()]
    assert task["args"] == (row.pk,) and CANARY not in repr(task)
    delivery.send_task(row.pk)
    assert len(webhook_receiver.requests) == 1
    html = admin_client.get(change_url(channel)).content.decode()
    assert "ok (" in html and "Delivered." in html and CANARY not in html


def test_a_failed_test_shows_the_error_without_the_secret(admin_client, contact, closed_port):
    add_channel(admin_client, contact, f"json://u:{CANARY}@127.0.0.1:{closed_port}/h/{CANARY}")
    channel = NotificationChannel.objects.get()
    admin_client.post(
        CHANNELS, {"action": "send_test", "index": "0", "_selected_action": channel.pk}
    )
    delivery.send_task(Notification.objects.get().pk)
    for page in (CHANNELS, change_url(channel), NOTIFICATIONS):
        html = admin_client.get(page).content.decode()
        assert "onnection" in html and CANARY not in html


def test_viewers_see_channels_but_cannot_test_or_change_them(client, viewer, contact):
    channel = NotificationChannel(contact=contact)
    channels.set_url(channel, "json://127.0.0.1:9/x")
    channel.save()
    client.force_login(viewer)
    assert client.get(CHANNELS).status_code == 200
    assert "send_test" not in client.get(CHANNELS).content.decode()
    assert "Send test" not in client.get(change_url(channel)).content.decode()
    client.post(CHANNELS, {"action": "send_test", "index": "0", "_selected_action": channel.pk})
    assert not Notification.objects.exists()


def test_the_contact_page_manages_its_channels(admin_client, contact):
    data = {
        "issue_type": contact.issue_type,
        "team": contact.team,
        "response_minutes": 15,
        "priority": 100,
        "hours": "24/7",
        "channels-TOTAL_FORMS": 1,
        "channels-INITIAL_FORMS": 0,
        "channels-0-label": "team hook",
        "channels-0-url": f"tgram://123456789:{CANARY}/987654",
        "channels-0-enabled": "on",
        "channels-0-position": 0,
    }
    page = reverse("admin:ops_escalationcontact_change", args=[contact.pk])
    response = admin_client.post(page, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    channel = NotificationChannel.objects.get()
    assert (channel.contact, channel.kind) == (contact, ChannelKind.TELEGRAM)
    html = admin_client.get(page).content.decode()
    assert "tgram://••••" in html and CANARY not in html
    bad = {**data, "channels-0-url": f"bogus://{CANARY}", "channels-0-label": "x"}
    html = admin_client.post(page, bad).content.decode()
    assert "Unknown scheme" in html and CANARY not in html


def make_rows(channel: NotificationChannel, count: int, status: str) -> None:
    Notification.objects.bulk_create(
        Notification(
            event=NotifyEvent.OUTAGE_STARTED,
            channel=channel,
            recipient_repr="Admin Team",
            title=f"Outage {n}",
            body="{}",
            status=status,
            last_error="boom" if status == DeliveryStatus.FAILED else "",
        )
        for n in range(count)
    )


def list_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_notifications_page_lists_filters_and_searches(client, viewer, contact):
    channel = NotificationChannel(contact=contact)
    channels.set_url(channel, "ops@example.com")
    channel.save()
    make_rows(channel, 3, DeliveryStatus.FAILED)
    make_rows(channel, 2, DeliveryStatus.SENT)
    client.force_login(viewer)
    html = client.get(NOTIFICATIONS).content.decode()
    assert "Outage 0" in html and "boom" in html and "E-mail ops@example.com" in html
    failed = client.get(NOTIFICATIONS + "?status=failed").context["cl"].result_count
    assert failed == 3
    assert client.get(NOTIFICATIONS + "?q=Outage+1").context["cl"].result_count == 2
    by_channel = client.get(f"{NOTIFICATIONS}?channel__id__exact={channel.pk}")
    assert by_channel.context["cl"].result_count == 5
    small = list_queries(client, NOTIFICATIONS)
    make_rows(channel, 40, DeliveryStatus.SENT)
    assert list_queries(client, NOTIFICATIONS) == small
    assert "retry_now" not in html  # a viewer cannot retry
    one = Notification.objects.filter(title="Outage 0").first()
    detail = client.get(reverse("admin:ops_notification_change", args=[one.pk]))
    assert detail.status_code == 200 and "Outage 0" in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()  # read-only


def test_retry_now_requeues_failed_rows_only(
    client, support, contact, django_capture_on_commit_callbacks
):
    channel = NotificationChannel(contact=contact)
    channels.set_url(channel, "ops@example.com")
    channel.save()
    make_rows(channel, 2, DeliveryStatus.FAILED)
    make_rows(channel, 1, DeliveryStatus.SENT)
    support.user_permissions.add(Permission.objects.get(codename="change_notification"))
    client.force_login(support)
    ids = list(Notification.objects.values_list("pk", flat=True))
    form = {"action": "retry_now", "index": "0", "_selected_action": ids}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(NOTIFICATIONS, form)
    assert response.status_code == 302
    assert len(callbacks) == 2
    statuses = sorted(Notification.objects.values_list("status", flat=True))
    assert statuses == [DeliveryStatus.RETRYING, DeliveryStatus.RETRYING, DeliveryStatus.SENT]
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["Retrying 2 notification(s), 1 skipped (not failed)."]
