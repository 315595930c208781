"""Delivery: one Notification row per message, sent by the worker after commit, retried with
back-off, duplicates suppressed.

The row is the queue (like healthchecks' Flip): `queue()` writes it in the caller's
transaction and enqueues `send_task(pk)` after the commit; a worker claims it with a
conditional UPDATE (status waiting, not leased) that pushes next_attempt_at forward as a lease,
so a second send_task, a send_due and a retry never send it twice; a worker killed mid-send
leaves a lease that send_due picks up after it expires."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from cfadmin.jobs import enqueue
from ops.models.notifications import (
    WAITING_STATES,
    DeliveryStatus,
    Notification,
    NotificationChannel,
    NotifyEvent,
)
from ops.notifications import channels

if TYPE_CHECKING:
    from ops.models import Incident
    from ops.models.notifications import NotificationRule

logger = logging.getLogger(__name__)

SEND_TASK = "ops.notifications.delivery.send_task"
DUE_BATCH = 200  # rows a send_due run takes (each bounded by NOTIFY_TIMEOUT_SECONDS) ...
DUE_SECONDS = 45.0  # ... for at most this long: the next minute's run takes the rest
# A PENDING row whose send_task never ran (a lost job) is sent by send_due after this.
STALE_PENDING = timedelta(minutes=5)
DEDUPE_KEY_MAX = 200
# Statuses a duplicate is measured against: a suppressed or failed message silences nothing.
DEDUPE_AGAINST = (*WAITING_STATES, DeliveryStatus.SENT)


def _lease() -> timedelta:
    """How long a claimed row is left alone: longer than any one send can take."""
    longest = max(settings.NOTIFY_TIMEOUT_SECONDS, settings.EMAIL_TIMEOUT or 0)
    return timedelta(seconds=3 * longest + 60)


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: BASE, then doubling, up to MAX."""
    seconds = settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.NOTIFY_RETRY_MAX_SECONDS))


def _dedupe_key(key: str) -> str:
    if len(key) <= DEDUPE_KEY_MAX:
        return key
    return key[: DEDUPE_KEY_MAX - 41] + "#" + hashlib.sha1(key.encode()).hexdigest()


def _is_duplicate(
    channel: NotificationChannel | None, to_address: str, key: str, now: datetime
) -> bool:
    since = now - timedelta(minutes=settings.NOTIFY_DEDUPE_MINUTES)
    same_target = Q(channel=channel) if channel is not None else Q(to_address__iexact=to_address)
    return Notification.objects.filter(
        same_target, dedupe_key=key, created_at__gte=since, status__in=DEDUPE_AGAINST
    ).exists()


def queue(
    *,
    event: str,
    title: str,
    body: str,
    recipient_repr: str,
    channel: NotificationChannel | None = None,
    to_address: str = "",
    link: str = "",
    incident: Incident | None = None,
    rule: NotificationRule | None = None,
    dedupe_key: str = "",
    not_before: datetime | None = None,
) -> Notification:
    """Record one notification in the caller's transaction; the worker sends it after commit.
    Same (channel or address, dedupe_key) within NOTIFY_DEDUPE_MINUTES -> SUPPRESSED;
    not_before in the future -> HELD until then; else PENDING and enqueued."""
    if (channel is None) == (not to_address):
        raise ValueError("queue() needs exactly one of channel and to_address.")
    now = timezone.now()
    key = _dedupe_key(dedupe_key)
    row = Notification(
        event=event,
        channel=channel,
        to_address=to_address,
        recipient_repr=recipient_repr[:200],
        title=title[:300],
        body=body,
        link=link[:500],
        incident=incident,
        rule=rule,
        dedupe_key=key,
        created_at=now,
    )
    with transaction.atomic():
        if channel is not None and key:
            # Two events at once (two workers) must not both pass the duplicate check: the
            # channel's row is the lock (SQLite serialises writers anyway).
            NotificationChannel.objects.select_for_update().filter(pk=channel.pk).first()
        if key and _is_duplicate(channel, to_address, key, now):
            row.status = DeliveryStatus.SUPPRESSED
        elif not_before is not None and not_before > now:
            row.status, row.next_attempt_at = DeliveryStatus.HELD, not_before
        else:
            row.status = DeliveryStatus.PENDING
        row.save()
    if row.status == DeliveryStatus.PENDING:
        enqueue(SEND_TASK, row.pk)
    return row


def send_test(channel: NotificationChannel) -> Notification:
    """Queue a CHANNEL_TEST message to the channel; its outcome is stored on the channel."""
    path = reverse("admin:ops_notificationchannel_change", args=[channel.pk])
    label = channel.label or channel.get_kind_display()
    return queue(
        event=NotifyEvent.CHANNEL_TEST,
        title="cfadmin: test notification",
        body=f"A test of the channel '{label}' of {channel.owner_repr}. "
        "If you read this, cfadmin can reach you here.",
        recipient_repr=channel.owner_repr,
        channel=channel,
        link=settings.CFADMIN_BASE_URL + path,
    )


def _claim(notification_id: int, now: datetime) -> bool:
    """Take the row for one attempt: exactly one caller gets True per attempt."""
    return (
        Notification.objects.filter(pk=notification_id, status__in=WAITING_STATES)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(next_attempt_at=now + _lease(), attempts=F("attempts") + 1)
        == 1
    )


def _attempt(row: Notification) -> tuple[bool, str, bool]:
    """(ok, error, permanent): one send of a claimed row; never raises."""
    if row.channel is None and not row.to_address:
        return False, "The channel was deleted.", True
    if row.channel is not None and not row.channel.enabled:
        return False, "The channel is disabled.", True
    try:
        ok, error = channels.send(row.channel or row.to_address, row.title, row.body, row.link)
    except Exception as exc:  # a bug must not kill the worker; its text may hold the URL
        logger.exception("Notification %s: sending raised %s", row.pk, type(exc).__name__)
        return False, f"Internal error while sending ({type(exc).__name__}).", False
    return ok, error, False


def _record(row: Notification, ok: bool, error: str, permanent: bool, now: datetime) -> str:
    """Write the outcome on the row and its channel, in one transaction."""
    rows = Notification.objects.filter(pk=row.pk)
    channel_rows = NotificationChannel.objects.filter(pk=row.channel_id)
    # A test answers "does it work now": it is not retried for an hour.
    final = permanent or row.event == NotifyEvent.CHANNEL_TEST
    with transaction.atomic():
        if ok:
            outcome = DeliveryStatus.SENT
            rows.update(status=outcome, sent_at=now, next_attempt_at=None, last_error="")
            channel_rows.update(consecutive_failures=0)
        else:
            gives_up = final or row.attempts >= settings.NOTIFY_MAX_ATTEMPTS
            outcome = DeliveryStatus.FAILED if gives_up else DeliveryStatus.RETRYING
            retry_at = None if gives_up else now + backoff(row.attempts)
            rows.update(status=outcome, next_attempt_at=retry_at, last_error=error[:500])
            if not permanent:
                channel_rows.update(
                    consecutive_failures=F("consecutive_failures") + 1, last_failure_at=now
                )
        if row.event == NotifyEvent.CHANNEL_TEST:
            channel_rows.update(
                last_test_at=now, last_test_ok=ok, last_test_message=(error or "Delivered.")[:300]
            )
    return outcome


def _send(notification_id: int, now: datetime) -> str:
    if not _claim(notification_id, now):
        return "skipped: not due, already sent or being sent"
    row = Notification.objects.select_related("channel").get(pk=notification_id)
    ok, error, permanent = _attempt(row)
    outcome = _record(row, ok, error, permanent, now)
    logger.info("Notification %s (%s, attempt %s): %s", row.pk, row.event, row.attempts, outcome)
    return str(outcome)


def send_task(notification_id: int) -> str:
    """Worker job: claim the row, send it once, record the outcome. Never raises."""
    try:
        return _send(notification_id, timezone.now())
    except Exception as exc:  # the row stays leased; send_due tries it again
        logger.exception("Notification %s: %s", notification_id, type(exc).__name__)
        return f"error: {type(exc).__name__}"


def send_due(now: datetime | None = None) -> int:
    """1-minute schedule: send HELD/RETRYING rows whose next_attempt_at <= now (bounded), and
    rows whose job was lost or whose worker died mid-send. Returns how many were attempted."""
    now = now or timezone.now()
    due = Notification.objects.filter(status__in=WAITING_STATES).filter(
        Q(next_attempt_at__lte=now)
        | Q(
            status=DeliveryStatus.PENDING,
            next_attempt_at__isnull=True,
            created_at__lte=now - STALE_PENDING,
        )
    )
    ids = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:DUE_BATCH])
    sent = 0
    deadline = time.monotonic() + DUE_SECONDS
    for notification_id in ids:
        if time.monotonic() > deadline:
            break
        try:
            sent += not _send(notification_id, now).startswith("skipped")
        except Exception as exc:  # one bad row must not stop the batch
            logger.exception("Notification %s: %s", notification_id, type(exc).__name__)
    return sent


def cancel_waiting(rows: QuerySet[Notification], reason: str) -> int:
    """Rows not sent yet that are no longer true (an acknowledged incident's held pages, an
    outage's recovery that did not last): CANCELLED, never sent. Returns how many."""
    return rows.filter(status__in=WAITING_STATES).update(
        status=DeliveryStatus.CANCELLED, next_attempt_at=None, last_error=reason[:500]
    )


RETRY_BATCH = 1000  # rows one "retry now" takes (a select-all must not requeue a million)


def retry_now(notifications: Iterable[Notification]) -> int:
    """Give FAILED rows one more attempt now (in the worker, after commit); returns how many
    (at most RETRY_BATCH)."""
    ids = [n.pk for n in notifications if n.status == DeliveryStatus.FAILED][:RETRY_BATCH]
    count = 0
    for notification_id in ids:
        if Notification.objects.filter(pk=notification_id, status=DeliveryStatus.FAILED).update(
            status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now()
        ):
            enqueue(SEND_TASK, notification_id)
            count += 1
    return count


def failing_channels() -> QuerySet[NotificationChannel]:
    """Enabled channels with consecutive_failures >= NOTIFY_CHANNEL_FAILURES_WARNING."""
    return (
        NotificationChannel.objects.filter(
            enabled=True, consecutive_failures__gte=settings.NOTIFY_CHANNEL_FAILURES_WARNING
        )
        .select_related("contact", "user")
        .order_by("-consecutive_failures", "pk")
    )
