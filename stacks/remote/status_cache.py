"""Coolify's service statuses, read at most once per interval by one worker for all of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from stacks.clients.coolify import CoolifyClient
from stacks.clients.errors import ClientError
from stacks.clients.pacing import INTERACTIVE, calls_as
from stacks.models import RemoteSnapshot

# A worker that finds the round claimed and its read still in flight looks again this soon
# (or after the interval, if shorter): the read takes one call's time.
IN_FLIGHT_RECHECK = 0.25


@dataclass(frozen=True)
class StatusRead:
    """Every Coolify service's status, and when the read that produced it began.

    `next_at`: when a newer read can be had (the next round, or the one in flight landing), so
    pollers wake with the rounds instead of up to a whole interval after one; None for the
    worker that made the read (it polls again a whole interval later)."""

    statuses: dict[str, str]
    began_at: datetime
    next_at: datetime | None = None


def service_statuses(coolify: CoolifyClient, *, max_age: float) -> StatusRead:
    """Every Coolify service's status, read at most once per `max_age` across all workers.

    `began_at` is when the winning worker claimed the round, before it called Coolify: a read
    that began after a request can show that request's effect; one that began before cannot.
    The row's `fetched_at` is the claim; its data holds the last completed read with its own
    `began_at`, so a worker that loses the claim while the winner's call is in flight gets the
    previous read under its real time, never old statuses under the new round's time.
    """
    name = f"coolify-services:{coolify.base_url}"
    now = timezone.now()
    snapshot = RemoteSnapshot.objects.filter(name=name).first()
    if snapshot is not None and (now - snapshot.fetched_at).total_seconds() < max_age:
        return _last(snapshot, coolify, max_age)
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
        return _last(RemoteSnapshot.objects.get(name=name), coolify, max_age)
    try:
        # INTERACTIVE whoever claimed the round: the read serves every operation polling, a
        # person's too, and one stuck behind the background reserve would stall them all.
        # One call per round across all workers, so it costs little of the budget.
        with calls_as(INTERACTIVE):
            read = _read(coolify, now)  # the caller's own read: it waits a whole interval
    except ClientError:
        # No answer is not a fresh snapshot: give the round back, so the next poll asks again.
        RemoteSnapshot.objects.filter(name=name, fetched_at=now).update(
            fetched_at=snapshot.fetched_at
        )
        raise
    RemoteSnapshot.objects.filter(name=name, fetched_at=now).update(
        data={"began_at": now.isoformat(), "statuses": read.statuses}
    )
    return read


def _read(
    coolify: CoolifyClient, began_at: datetime, next_at: datetime | None = None
) -> StatusRead:
    statuses = {s["uuid"]: str(s.get("status", "")) for s in coolify.list_services()}
    return StatusRead(statuses, began_at, next_at)


def _last(snapshot: RemoteSnapshot, coolify: CoolifyClient, max_age: float) -> StatusRead:
    """The last completed read, for a worker that did not claim this round."""
    data = snapshot.data
    began_at = None
    if isinstance(data, dict) and isinstance(data.get("statuses"), dict):
        began_at = parse_datetime(str(data.get("began_at") or ""))
    if began_at is None:
        # No read completed yet (the very first round is in flight): read for ourselves.
        return _read(coolify, timezone.now())
    if began_at >= snapshot.fetched_at:  # the claimed round's read has landed
        next_at = snapshot.fetched_at + timedelta(seconds=max_age)
    else:  # the claimed round's read is in flight
        next_at = timezone.now() + timedelta(seconds=min(IN_FLIGHT_RECHECK, max_age))
    return StatusRead(dict(data["statuses"]), began_at, next_at)
