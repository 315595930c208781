"""Queueing background work from the admin: one place that calls django-q2."""

from __future__ import annotations

from typing import Any


def enqueue(func: str, *args: Any) -> None:
    """Queue `func` (a dotted path) with primary keys or plain values, never objects or secrets."""
    from django_q.tasks import async_task  # imported late: the cluster config loads with it

    async_task(func, *args)
