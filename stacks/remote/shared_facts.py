"""Facts about a remote that rarely change (the server stacks go on, that Coolify's version has
what cfadmin needs), learnt once for every worker process.

Each process asking again would spend calls of Coolify's rate-limited budget (200 a minute,
shared by every worker) after every worker start or recycle; a row serves them all.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from stacks.models import RemoteSnapshot


def recall(name: str, *, max_age: float) -> Any | None:
    """The value remembered under `name` less than `max_age` seconds ago, else None."""
    row = RemoteSnapshot.objects.filter(name=name).first()
    if row is None or (timezone.now() - row.fetched_at).total_seconds() >= max_age:
        return None
    return row.data.get("value") if isinstance(row.data, dict) else None


def remember(name: str, value: Any) -> None:
    RemoteSnapshot.objects.update_or_create(
        name=name, defaults={"data": {"value": value}, "fetched_at": timezone.now()}
    )
