"""Delivery: rows queued after commit, sent once by the worker, retried with back-off,
duplicates suppressed, held rows waiting for their time, failing channels counted; against a
real HTTP receiver and a real SMTP server on loopback."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from ops.models import EscalationContact
from ops.models.notifications import (
    DeliveryStatus,
    Notification,
    NotificationChannel,
    NotifyEvent,
)
from ops.notifications import channels, delivery

pytestmark = pytest.mark.django_db
CANARY = "canaryTOKEN51c0ffee"


@pytest.fixture(autouse=True)
def _notify_settings(settings):
    settings.NOTIFY_RETRY_BASE_SECONDS = 60
    settings.NOTIFY_RETRY_MAX_SECONDS = 3600
    settings.NOTIFY_MAX_ATTEMPTS = 6
    settings.NOTIFY_DEDUPE_MINUTES = 30
    settings.NOTIFY_CHANNEL_FAILURES_WARNING = 3


@pytest.fixture
def contact():
    return EscalationContact.objects.create(
        issue_type="Delivery test", team="Delivery Team", response_minutes=15
    )


@pytest.fixture
def make_channel(contact):
    def make(url: str, **fields) -> NotificationChannel:
        channel = NotificationChannel(contact=contact, **fields)
        channels.set_url(channel, url)
        channel.save()
        return channel

    return make


@pytest.fixture
def hook(make_channel, webhook_receiver):
    return make_channel(webhook_receiver.url(f"/hook/{CANARY}"))


def queue_one(channel=None, **fields) -> Notification:
    values = dict(
        event=NotifyEvent.INCIDENT_OPENED,
        title="SEV1: Platform down",
        body="Coolify API unreachable. Respond by 10:15.",
        link="http://127.0.0.1:8000/admin/ops/incident/1/change/",
        recipient_repr="Delivery Team",
        channel=channel,
    )
    values.update(fields)
    return delivery.queue(**values)


def test_a_row_is_queued_after_commit_with_its_pk_only(hook, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        row = queue_one(hook)
        assert OrmQ.objects.count() == 0  # nothing before the commit
    assert row.status == DeliveryStatus.PENDING and len(callbacks) == 1
    [task] = [q.task for q in OrmQ.objects.all()]
    assert (task["func"], task["args"]) == ("ops.notifications.delivery.send_task", (row.pk,))
    assert CANARY not in str(task)


def test_the_worker_sends_it_to_the_webhook(hook, webhook_receiver):
    row = queue_one(hook)
    assert delivery.send_task(row.pk) == DeliveryStatus.SENT
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.SENT, 1, "")
    assert row.sent_at is not None and row.next_attempt_at is None
    [request] = webhook_receiver.requests
    payload = request.json()
    assert payload["title"] == "SEV1: Platform down"
    assert "Respond by 10:15." in payload["message"]
    assert "/admin/ops/incident/1/change/" in payload["message"]


def test_an_address_is_mailed(smtp_server):
    row = queue_one(to_address="oncall@example.com", recipient_repr="oncall@example.com")
    assert delivery.send_task(row.pk) == DeliveryStatus.SENT
    assert smtp_server.messages[0]["Subject"] == "SEV1: Platform down"
    assert "/admin/ops/incident/1/change/" in smtp_server.bodies()[0]


def test_a_sent_row_is_never_sent_twice(hook, webhook_receiver):
    row = queue_one(hook)
    assert delivery.send_task(row.pk) == DeliveryStatus.SENT
    assert delivery.send_task(row.pk).startswith("skipped")
    assert delivery.send_due(timezone.now() + timedelta(days=1)) == 0
    assert len(webhook_receiver.requests) == 1


def test_a_row_being_sent_is_not_claimed_again():
    row = Notification.objects.create(
        event=NotifyEvent.CHANNEL_TEST, to_address="a@example.com", recipient_repr="a", title="t"
    )
    now = timezone.now()
    assert delivery._claim(row.pk, now) is True
    assert delivery._claim(row.pk, now) is False  # the lease holds it
    assert delivery._claim(row.pk, now + delivery._lease() + timedelta(seconds=1)) is True


def test_a_receiver_failing_twice_is_retried_with_back_off(hook, webhook_receiver):
    webhook_receiver.fail_next = 2
    row = queue_one(hook)
    start = timezone.now()
    assert delivery.send_task(row.pk) == DeliveryStatus.RETRYING
    row.refresh_from_db()
    assert (row.status, row.attempts) == (DeliveryStatus.RETRYING, 1)
    first_wait = row.next_attempt_at - start
    assert timedelta(seconds=59) < first_wait < timedelta(seconds=70)
    assert "500" in row.last_error and CANARY not in row.last_error

    assert delivery.send_due(start + timedelta(seconds=30)) == 0  # not due yet
    later = start + timedelta(seconds=61)
    assert delivery.send_due(later) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (DeliveryStatus.RETRYING, 2)
    assert row.next_attempt_at == later + timedelta(seconds=120)  # doubled

    assert delivery.send_due(row.next_attempt_at) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.SENT, 3, "")
    assert len(webhook_receiver.requests) == 3
    hook.refresh_from_db()
    assert hook.consecutive_failures == 0


def test_it_fails_after_the_last_attempt(make_channel, closed_port, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    channel = make_channel(f"json://user:{CANARY}@127.0.0.1:{closed_port}/hook/{CANARY}")
    row = queue_one(channel)
    now = timezone.now()
    delivery.send_task(row.pk)
    for _ in range(3):
        now += timedelta(hours=2)
        delivery.send_due(now)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == (DeliveryStatus.FAILED, 3, None)
    assert "onnection" in row.last_error
    channel.refresh_from_db()
    assert channel.consecutive_failures == 3 and channel.last_failure_at is not None


def test_no_secret_in_rows_tasks_or_logs_after_a_failure(
    make_channel, closed_port, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="apprise")
    channel = make_channel(f"json://admin:{CANARY}@127.0.0.1:{closed_port}/x/{CANARY}?k={CANARY}")
    with django_capture_on_commit_callbacks(execute=True):
        row = queue_one(channel)
    delivery.send_task(row.pk)
    stored = Notification.objects.filter(pk=row.pk).values().get()
    assert stored["status"] == DeliveryStatus.RETRYING and stored["last_error"]
    assert not any(CANARY in str(value) for value in stored.values())
    assert all(CANARY not in str(q.task) and CANARY not in q.payload for q in OrmQ.objects.all())
    assert CANARY not in caplog.text
    assert "json://127.0.0.1" in caplog.text  # the log names the channel by its hint


def test_fifty_duplicates_send_one(hook, webhook_receiver):
    rows = [queue_one(hook, dedupe_key="outage:coolify") for _ in range(50)]
    statuses = [row.status for row in rows]
    assert statuses.count(DeliveryStatus.PENDING) == 1
    assert statuses.count(DeliveryStatus.SUPPRESSED) == 49
    for row in rows:
        delivery.send_task(row.pk)
    assert len(webhook_receiver.requests) == 1
    assert Notification.objects.filter(status=DeliveryStatus.SENT).count() == 1

    # After the window a new one is sent (the suppressed ones do not extend it).
    Notification.objects.update(created_at=timezone.now() - timedelta(minutes=31))
    assert queue_one(hook, dedupe_key="outage:coolify").status == DeliveryStatus.PENDING
    # Another key, or another channel, is no duplicate.
    assert queue_one(hook, dedupe_key="outage:pb").status == DeliveryStatus.PENDING
    other = NotificationChannel.objects.create(
        contact=hook.contact, url_encrypted=hook.url_encrypted, kind=hook.kind
    )
    assert queue_one(other, dedupe_key="outage:pb").status == DeliveryStatus.PENDING


def test_a_failed_message_does_not_silence_the_next(hook):
    first = queue_one(hook, dedupe_key="k")
    Notification.objects.filter(pk=first.pk).update(status=DeliveryStatus.FAILED)
    assert queue_one(hook, dedupe_key="k").status == DeliveryStatus.PENDING


def test_a_held_row_waits_for_its_time(hook, webhook_receiver, django_capture_on_commit_callbacks):
    not_before = timezone.now() + timedelta(hours=3)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        row = queue_one(hook, not_before=not_before)
    assert (row.status, row.next_attempt_at, callbacks) == (DeliveryStatus.HELD, not_before, [])
    assert delivery.send_task(row.pk).startswith("skipped")
    assert delivery.send_due(not_before - timedelta(minutes=1)) == 0
    assert webhook_receiver.requests == []
    assert delivery.send_due(not_before) == 1
    row.refresh_from_db()
    assert row.status == DeliveryStatus.SENT and len(webhook_receiver.requests) == 1


def test_a_past_not_before_is_sent_now(hook):
    row = queue_one(hook, not_before=timezone.now() - timedelta(minutes=1))
    assert row.status == DeliveryStatus.PENDING


def test_a_lost_job_is_sent_by_send_due(hook, webhook_receiver):
    row = queue_one(hook)
    assert delivery.send_due(timezone.now()) == 0  # its job may still run
    assert delivery.send_due(timezone.now() + delivery.STALE_PENDING) == 1
    row.refresh_from_db()
    assert row.status == DeliveryStatus.SENT


def test_failures_count_per_channel_reset_on_success(hook, webhook_receiver):
    webhook_receiver.fail_next = 3
    for _ in range(3):
        delivery.send_task(queue_one(hook).pk)
    hook.refresh_from_db()
    assert hook.consecutive_failures == 3
    assert list(delivery.failing_channels()) == [hook]
    NotificationChannel.objects.filter(pk=hook.pk).update(enabled=False)
    assert list(delivery.failing_channels()) == []
    NotificationChannel.objects.filter(pk=hook.pk).update(enabled=True)
    assert delivery.send_task(queue_one(hook).pk) == DeliveryStatus.SENT
    hook.refresh_from_db()
    assert hook.consecutive_failures == 0
    assert list(delivery.failing_channels()) == []


def test_a_broken_channel_is_an_error_recorded_not_raised(make_channel, monkeypatch):
    channel = make_channel("json://127.0.0.1:9/x")
    NotificationChannel.objects.filter(pk=channel.pk).update(url_encrypted="garbage")
    row = queue_one(channel)
    assert delivery.send_task(row.pk) == DeliveryStatus.RETRYING
    row.refresh_from_db()
    assert "cannot be decrypted" in row.last_error

    def explode(*args, **kwargs):
        raise RuntimeError(f"bug with json://x/{CANARY}")

    monkeypatch.setattr(channels, "send", explode)
    second = queue_one(channel, title="other")
    assert delivery.send_task(second.pk) == DeliveryStatus.RETRYING
    second.refresh_from_db()
    assert second.last_error == "Internal error while sending (RuntimeError)."
    assert delivery.send_task(10**9).startswith("skipped")  # a row that does not exist


def test_a_disabled_or_deleted_channel_fails_at_once(hook, webhook_receiver):
    row = queue_one(hook)
    NotificationChannel.objects.filter(pk=hook.pk).update(enabled=False)
    assert delivery.send_task(row.pk) == DeliveryStatus.FAILED
    orphan = queue_one(hook, title="x")
    hook.delete()
    assert delivery.send_task(orphan.pk) == DeliveryStatus.FAILED
    orphan.refresh_from_db()
    assert orphan.last_error == "The channel was deleted."
    assert webhook_receiver.requests == []


def test_a_channel_test_stores_its_outcome_on_the_channel(hook, webhook_receiver):
    row = delivery.send_test(hook)
    assert row.event == NotifyEvent.CHANNEL_TEST
    assert delivery.send_task(row.pk) == DeliveryStatus.SENT
    hook.refresh_from_db()
    assert (hook.last_test_ok, hook.last_test_message) == (True, "Delivered.")
    assert f"/admin/ops/notificationchannel/{hook.pk}/change/" in webhook_receiver.bodies()[0]

    webhook_receiver.fail_next = 1
    failed = delivery.send_test(hook)
    assert delivery.send_task(failed.pk) == DeliveryStatus.FAILED  # a test is not retried
    hook.refresh_from_db()
    assert hook.last_test_ok is False and "500" in hook.last_test_message
    assert CANARY not in hook.last_test_message


def test_retry_now_gives_a_failed_row_one_more_attempt(
    hook, webhook_receiver, django_capture_on_commit_callbacks
):
    webhook_receiver.fail_next = 1
    row = delivery.send_test(hook)
    delivery.send_task(row.pk)
    row.refresh_from_db()
    assert row.status == DeliveryStatus.FAILED
    sent = queue_one(hook)
    delivery.send_task(sent.pk)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert delivery.retry_now([row, sent]) == 1
    assert len(callbacks) == 1
    assert delivery.send_task(row.pk) == DeliveryStatus.SENT


def test_queue_needs_one_target():
    with pytest.raises(ValueError):
        queue_one(None)
