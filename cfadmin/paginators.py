"""Counting rows of big, growing tables without reading them all, for admin lists.

COUNT(*) reads every matching row (PostgreSQL keeps no row count), so a list of a table with
hundreds of thousands of rows would spend most of its time counting. Here a count reads at most
ESTIMATE_ABOVE + 1 rows; past that, on PostgreSQL, it is the planner's estimate (EXPLAIN reads
nothing) and the page says "about". Filtered lists are treated the same (a filter matching half
the audit trail is as costly to count as the trail). SQLite always counts exactly: one machine,
small tables.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet

# Up to this many matching rows the count is exact (reading them from an index is cheap).
ESTIMATE_ABOVE = 10_000


def planner_rows(queryset: QuerySet) -> int | None:
    """PostgreSQL's estimate of the queryset's rows (EXPLAIN, nothing is read), or None."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # a filter that can match nothing (pk__in=[], .none())
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def count_rows(queryset: QuerySet, *, estimate_above: int | None = None) -> tuple[int, bool]:
    """(count, estimated): exact up to `estimate_above` rows; past it, on PostgreSQL, the
    planner's estimate (never less than what was counted). Two queries on PostgreSQL, one
    elsewhere, whatever the table's size."""
    cap = ESTIMATE_ABOVE if estimate_above is None else estimate_above
    estimate = planner_rows(queryset)
    if estimate is None:
        return queryset.count(), False
    counted = queryset.order_by()[: cap + 1].count()
    if counted <= cap:
        return counted, False
    return max(estimate, counted), True


class EstimatedCountPaginator(Paginator):
    """A Paginator whose count is count_rows(); `estimated` says the count is the planner's.
    For ModelAdmin.paginator, with show_full_result_count = False (that second count is a full
    COUNT of the table)."""

    estimated = False

    @cached_property
    def count(self) -> int:
        rows: Any = self.object_list
        if not isinstance(rows, QuerySet):
            return super().count
        known = getattr(rows, "known_count", None)
        if known is not None:  # counted already, through indexes (AuditEventQuerySet.search)
            return known
        total, self.estimated = count_rows(rows)
        return total
