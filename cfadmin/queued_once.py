"""One queued at a time: a job asked for while one is already queued or running is refused.

"Run health checks now", "Reconcile now" and a checklist run's "Run automatic checks" each
spend Coolify calls (200 a minute for everything cfadmin does); a second click while the first
is still waiting adds nothing but cost. Each accepted request is an audit event (who asked,
when). It stays pending until the job's own records show a run that began after it (`served`,
answered by the app that owns the job), or until `stale_after` has passed: a worker that died
must not block the button for ever. The broker is never asked: the database is the record.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.utils import timezone

from cfadmin import audit
from cfadmin.models import AuditAction, AuditEvent


class AlreadyQueued(Exception):
    """A request of the same job is queued or running; says who asked for it and when."""

    def __init__(self, label: str, pending: AuditEvent) -> None:
        self.requested_by = pending.actor_repr
        self.requested_at = pending.occurred_at
        when = timezone.localtime(pending.occurred_at).strftime("%Y-%m-%d %H:%M:%S %Z")
        self.message = (
            f"{label}: one is already queued (requested by {self.requested_by} at {when})."
        )
        super().__init__(self.message)


def request_once(
    job: str,
    *,
    actor: Any,
    label: str,
    served: Callable[[datetime], bool],
    queue: Callable[[], None],
    stale_after: timedelta,
    target: models.Model | None = None,
) -> AuditEvent:
    """Record the request and `queue` the job, unless one is pending (AlreadyQueued).

    `served(t)` says whether a run that began at or after `t` has finished. `queue` must queue
    on commit (cfadmin.jobs.enqueue does), so a refused or failed request queues nothing.
    """
    with transaction.atomic():
        _serialize(job, target)
        pending = pending_request(job, target=target, stale_after=stale_after, served=served)
        if pending is not None:
            raise AlreadyQueued(label, pending)
        event = audit.record(
            actor=actor,
            action=AuditAction.OPERATION,
            target=target,
            message=f"{label} requested",
            changes={"job": job},
        )
        queue()
    return event


def pending_request(
    job: str,
    *,
    target: models.Model | None,
    stale_after: timedelta,
    served: Callable[[datetime], bool],
) -> AuditEvent | None:
    """The newest request of `job` not yet served and not stale, if any. (A run that serves it
    began after every older request too, so only the newest one needs asking about.)"""
    requests = AuditEvent.objects.filter(
        action=AuditAction.OPERATION,
        changes__job=job,
        occurred_at__gte=timezone.now() - stale_after,
    )
    if target is None:
        requests = requests.filter(target_type__isnull=True)
    else:
        requests = requests.filter(
            target_type=ContentType.objects.get_for_model(target), target_id=str(target.pk)
        )
    newest = requests.order_by("-occurred_at", "-id").first()
    if newest is None or served(newest.occurred_at):
        return None
    return newest


def _serialize(job: str, target: models.Model | None) -> None:
    """Two requests at the same moment must not both see none pending. PostgreSQL: a lock held
    to the end of the transaction; SQLite's transactions (IMMEDIATE) are serialized already."""
    if connection.vendor != "postgresql":
        return
    key = f"queued-once:{job}:{target._meta.label if target else ''}:{target.pk if target else ''}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(key.encode())])
