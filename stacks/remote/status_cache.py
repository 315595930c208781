"""Coolify's service statuses, read at most once per interval by one worker for all of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from stacks.clients.coolify import CoolifyClient
from stacks.clients.errors import ClientError
from stacks.models import RemoteSnapshot


@dataclass(frozen=True)
class StatusRead:
    """Every Coolify service's status, and when the read that produced it began."""

    statuses: dict[str, str]
    began_at: datetime


def service_statuses(coolify: CoolifyClient, *, max_age: float) -> StatusRead:
    """Every Coolify service's status, read at most once per `max_age` across all workers.

    `began_at` is when the winning worker claimed the round, before it called Coolify: a read
    that began after a request can show that request's effect; one that began before cannot.
    """
    name = f"coolify-services:{coolify.base_url}"
    now = timezone.now()
    snapshot = RemoteSnapshot.objects.filter(name=name).first()
    if snapshot is not None and (now - snapshot.fetched_at).total_seconds() < max_age:
        return StatusRead(snapshot.data, snapshot.fetched_at)
    if snapshot is None:
        RemoteSnapshot.objects.get_or_create(
            name=name, defaults={"data": {}, "fetched_at": now - timedelta(days=1)}
        )
        snapshot = RemoteSnapshot.objects.get(name=name)
    # Claim this round: only the worker whose conditional UPDATE wins calls Coolify.
    claimed = RemoteSnapshot.objects.filter(name=name, fetched_at=snapshot.fetched_at).update(
        fetched_at=now
    )
    if not claimed:
        fresh = RemoteSnapshot.objects.get(name=name)
        return StatusRead(fresh.data, fresh.fetched_at)
    try:
        statuses = {s["uuid"]: str(s.get("status", "")) for s in coolify.list_services()}
    except ClientError:
        # No answer is not a fresh snapshot: give the round back, so the next poll asks again.
        RemoteSnapshot.objects.filter(name=name, fetched_at=now).update(
            fetched_at=snapshot.fetched_at
        )
        raise
    RemoteSnapshot.objects.filter(name=name, fetched_at=now).update(data=statuses)
    return StatusRead(statuses, now)
