"""Coolify's call budget as every process sees it, for the dashboard (issue 17).

Each process paces itself from the `X-RateLimit-*` headers of the answers it gets
(stacks/clients/pacing.py). Whichever process saw the latest ones writes them to the
RemoteSnapshot row "coolify_budget", at most once every WRITE_EVERY seconds across all
processes (a conditional UPDATE on the row's time) and at once after a 429; `current()` reads
that row and the background operations' counts.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from stacks.clients.pacing import BudgetView, RatePacer, reserves
from stacks.models import RemoteSnapshot

logger = logging.getLogger(__name__)

SNAPSHOT = "coolify_budget"
WRITE_EVERY = 5.0  # seconds: the dashboard refreshes slower than this

_lock = threading.Lock()
_last_write = -float("inf")  # this process's last write (time.monotonic)


def current() -> dict[str, Any]:
    """The shared Coolify budget now, for the dashboard. Keys:

    - `limit`, `remaining`: the server's count in its current one-minute window as last seen
      (None before any answer with the headers: a Coolify without the limit, or no call yet);
    - `used`: calls counted in that window (the last minute), `limit - remaining`;
    - `resets_at`: when that window ends at the latest (None when unknown or over);
    - `seen_at`: when those headers were written; `last_429_at`: the last 429 answer seen;
    - `interactive_reserve`, `background_reserve`: calls left in a window below which
      interactive / background calls wait (the background one at a window's start: it shrinks
      as the window runs out, stacks.clients.pacing);
    - `background_waiting`, `background_in_flight`, `background_cap`: background operations
      queued and not handed to the workers yet, handed over and not finished, and the cap.
    A window that has ended since is shown as a full budget (nothing counted since).
    """
    from stacks.services.dispatch import background_counts  # late: services import remote

    data = _snapshot_data()
    limit, remaining, resets_at = window_now(data, timezone.now())
    interactive, background = reserves(limit, settings.COOLIFY_BACKGROUND_RESERVE_SHARE, callers())
    counts = background_counts()
    return {
        "limit": limit,
        "remaining": remaining,
        "used": None if limit is None or remaining is None else max(0, limit - remaining),
        "resets_at": resets_at,
        "seen_at": _datetime(data.get("seen_at")),
        "last_429_at": _datetime(data.get("last_429_at")),
        "interactive_reserve": interactive,
        "background_reserve": background,
        "background_waiting": counts["waiting"],
        "background_in_flight": counts["in_flight"],
        "background_cap": settings.BACKGROUND_OPERATIONS_IN_FLIGHT,
    }


def window_now(data: dict[str, Any], now: datetime) -> tuple[Any, Any, datetime | None]:
    """(limit, remaining, resets_at) of the shared row's data as they stand at `now`: a
    window that has ended since is a full budget (nothing counted since)."""
    limit, remaining = data.get("limit"), data.get("remaining")
    resets_at = _datetime(data.get("resets_at"))
    if limit is not None and (resets_at is None or resets_at <= now):
        remaining, resets_at = limit, None  # that window is over
    return limit, remaining, resets_at


# The web server's processes that may call Coolify too (the Dockerfile's gunicorn workers).
WEB_PROCESSES = 3


def watch(pacer: RatePacer) -> RatePacer:
    """Have the pacer's answers written to the shared snapshot (idempotent)."""
    pacer.observer = note
    pacer.background_share = settings.COOLIFY_BACKGROUND_RESERVE_SHARE
    pacer.callers = callers()
    return pacer


def callers() -> int:
    """Processes that may call Coolify with the token at once: the workers and the web's."""
    return int(settings.Q_CLUSTER["workers"]) + WEB_PROCESSES


def note(view: BudgetView) -> None:
    """A pacer's latest view of the budget: written when this process's last write is older
    than WRITE_EVERY and no other process wrote meanwhile; at once after a 429. Never raises:
    the dashboard's figure is not worth failing a Coolify call for."""
    global _last_write
    mono = time.monotonic()
    with _lock:
        if not view.rate_limited and mono - _last_write < WRITE_EVERY:
            return
        _last_write = mono
    if _in_transaction():
        # Inside someone's transaction the row would stay locked until they commit (every
        # other worker's figure waits on it) and a failure would break their transaction:
        # the next call outside one writes it.
        return
    try:
        _without_waiting(_write, view)
    except Exception:  # locked by someone else's transaction, no database: skip this one
        logger.debug("Coolify budget snapshot not written", exc_info=True)


def _in_transaction() -> bool:
    return not transaction.get_autocommit()


def _without_waiting(write: Any, view: BudgetView) -> None:
    """Run `write` giving up at once if another connection holds the lock it needs (a health
    run's checks write from threads while the run, or a test, holds SQLite's write lock): the
    figure waits for the next call, the Coolify call never waits for the figure."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout")
            before = cursor.fetchone()[0]
            cursor.execute("PRAGMA busy_timeout = 0")
        try:
            write(view)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {int(before)}")
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '100ms'")
        write(view)


def _write(view: BudgetView) -> None:
    now = timezone.now()
    data: dict[str, Any] = {
        "limit": view.limit,
        "remaining": view.remaining,
        "resets_at": (now + timedelta(seconds=view.resets_in)).isoformat()
        if view.resets_in is not None
        else None,
        "seen_at": now.isoformat(),
        "last_429_at": now.isoformat() if view.rate_limited else None,
    }
    row = RemoteSnapshot.objects.filter(name=SNAPSHOT).first()
    if row is None:
        RemoteSnapshot.objects.get_or_create(
            name=SNAPSHOT, defaults={"data": data, "fetched_at": now}
        )
        return
    if not view.rate_limited:
        data["last_429_at"] = (row.data or {}).get("last_429_at")
    stale = now - timedelta(seconds=WRITE_EVERY)
    writable = RemoteSnapshot.objects.filter(name=SNAPSHOT)
    if not view.rate_limited:
        writable = writable.filter(fetched_at__lte=stale)  # another process wrote just now
    writable.update(data=data, fetched_at=now)


def _snapshot_data() -> dict[str, Any]:
    row = RemoteSnapshot.objects.filter(name=SNAPSHOT).first()
    return row.data if row is not None and isinstance(row.data, dict) else {}


def _datetime(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None
