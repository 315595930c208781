"""The Coolify call budget on the operations dashboard (issue 17): the shared row the pacers
write (stacks.remote.budget) and the background operations' counts, read as one more row of the
dashboard's UNION (ops.dashboard.small_lists) so the page stays within its query budget."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import DateTimeField, F, Func, IntegerField, TextField
from django.db.models.functions import Cast

from stacks.models import Operation, RemoteSnapshot
from stacks.remote import budget


def budget_part(no_time: tuple[str, ...]) -> tuple[str, tuple[Any, ...]]:
    """The Coolify budget's shared row (stacks.remote.budget) and the background operations'
    counts as one more row of the UNION: scalar subqueries, so the row is there even before
    Coolify ever answered."""
    snapshot = RemoteSnapshot.objects.filter(name=budget.SNAPSHOT)
    data_sql, data_params = snapshot.values(t=Cast("data", TextField()))[:1].query.sql_with_params()
    seen_sql, seen_params = snapshot.values("fetched_at")[:1].query.sql_with_params()
    count = Func(F("pk"), function="COUNT", output_field=IntegerField())
    waiting_sql, waiting_params = (
        Operation.objects.awaiting_dispatch().order_by().values(n=count).query.sql_with_params()
    )
    flying_sql, flying_params = (
        Operation.objects.background_in_flight().order_by().values(n=count).query.sql_with_params()
    )
    # A bare NULL would be text to PostgreSQL: typed as the other parts' times.
    moment = DateTimeField().db_type(connections[RemoteSnapshot.objects.db])
    others = ", ".join(f"CAST(NULL AS {moment}) AS {name}" for name in ("time2", *no_time))
    sql = (
        f"SELECT 'budget' AS row_kind, 0 AS row_id, ({data_sql}) AS text1, '' AS text2, "
        f"'' AS text3, '' AS text4, ({waiting_sql}) AS number, ({flying_sql}) AS number2, "
        f"({seen_sql}) AS time1, {others}"
    )
    return sql, (*data_params, *waiting_params, *flying_params, *seen_params)


def budget_shown(row: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """What the dashboard says of the Coolify budget, from the UNION's budget row (the same
    reading as stacks.remote.budget.current(): a window that has ended shows a full budget)."""
    row = row or {}
    try:
        data = json.loads(row.get("text1") or "{}")
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    limit, remaining, resets_at = budget.window_now(data, now)
    return {
        "limit": limit,
        "remaining": remaining,
        "resets_in": int((resets_at - now).total_seconds()) if resets_at else None,
        "seen_at": row.get("time1"),
        "background_waiting": int(row.get("number") or 0),
        "background_in_flight": int(row.get("number2") or 0),
        "background_cap": settings.BACKGROUND_OPERATIONS_IN_FLIGHT,
    }
