"""Queueing background work: the one place that calls django-q2, always after commit.

A job queued inside a transaction that rolls back would act on rows that never existed, and
one queued before its rows are committed can run before they are visible; so every job waits
for the commit (outside a transaction, `on_commit` runs at once).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction


def enqueue(func: str, *args: Any, **options: Any) -> None:
    """Queue `func` (a dotted path) with primary keys or plain values, never objects or secrets,
    once the current transaction commits. `options` are django-q2's (task_name, timeout…)."""

    def send() -> None:
        from django_q.tasks import async_task  # imported late: the cluster config loads with it

        async_task(func, *args, **options)

    transaction.on_commit(send)
