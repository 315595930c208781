"""Reading a stored run's drift a page at a time: how many rows of each kind and how many of
them offer each repair, and the rows of the pages shown.

A PocketBase reset leaves one row per stack (9,177 in the issue's measurement, 2.8 MB of
JSON). The run stores, with its drift, an index of it (`drift_counts`, count_rows): per kind
its rows, the rows offering each repair, where in the list its rows are (spans of
positions) and its first HEAD_ROWS rows (the first page, what a report shows unless asked for
another). A report reads that small column; for a later page it works out the positions of
the rows shown and asks the database for just those elements: one call that parses the list
once, inside the database (PostgreSQL: jsonb_path_query_array with `$[i, j, …]`; SQLite:
json_extract with several paths). The list never crosses the connection and is never parsed
by Python.

A run stored without the index (before it existed) is indexed once, on its first report, by
reading its list; a finished run's drift never changes.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django.db import connections

from stacks.models import ReconcileRun

TABLE = ReconcileRun._meta.db_table
# Rows of each kind kept in the index: a report's first page (report.ROWS_PER_PAGE).
HEAD_ROWS = 50
# SQLite functions take at most 100 arguments: json_extract(drift, 99 paths).
SQLITE_PATHS_PER_CALL = 99

# kind → (rows, {repair: rows offering it})
KindCounts = dict[str, tuple[int, dict[str, int]]]
# What drift_counts stores: kind → [rows, {repair: rows}, [[first, last], …] positions,
# [its first HEAD_ROWS rows]]
DriftIndex = dict[str, list[Any]]


def count_rows(rows: list[Any]) -> DriftIndex:
    """The index stored as `drift_counts`: for each kind, [rows, {repair: rows offering it},
    spans [first, last] of its positions in the list (one span when its rows are together),
    its first HEAD_ROWS rows]."""
    found: DriftIndex = {}
    for position, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        entry = found.setdefault(str(row.get("kind")), [0, Counter(), [], []])
        if entry[0] < HEAD_ROWS:
            entry[3].append(row)
        entry[0] += 1
        entry[1].update(set(row.get("repairs") or ()))
        spans = entry[2]
        if spans and spans[-1][1] == position - 1:
            spans[-1][1] = position
        else:
            spans.append([position, position])
    return {
        kind: [total, dict(by), spans, head] for kind, (total, by, spans, head) in found.items()
    }


def positions(spans: list[list[int]], offset: int, limit: int) -> list[int]:
    """The list positions of a kind's rows offset … offset + limit - 1 (in stored order)."""
    found: list[int] = []
    skip = offset
    for first, last in spans:
        size = last - first + 1
        if skip >= size:
            skip -= size
            continue
        start = first + skip
        skip = 0
        found.extend(range(start, min(last, start + limit - len(found) - 1) + 1))
        if len(found) >= limit:
            break
    return found


def reader(run_id: int, *, using: str = "default") -> StoredDrift:
    """The way to read this run's drift (kept for callers: one reader for every database)."""
    return StoredDrift(run_id, using=using)


class StoredDrift:
    """Counts from the run's stored index; the rows shown fetched by position."""

    def __init__(self, run_id: int, *, using: str = "default") -> None:
        self.run_id = run_id
        self.using = using
        self._index: DriftIndex | None = None

    def index(self) -> DriftIndex:
        """The stored index; for a run stored without it, built now (and stored once the run
        has finished)."""
        if self._index is None:
            runs = ReconcileRun.objects.using(self.using).filter(pk=self.run_id)
            found = runs.values_list("drift_counts", "finished_at").first()
            if found is None:
                self._index = {}
                return self._index
            stored, finished_at = found
            if stored is None:
                stored = count_rows(runs.values_list("drift", flat=True).first() or [])
                if finished_at is not None:
                    runs.update(drift_counts=stored)
            self._index = stored
        return self._index

    def kind_counts(self, repairs: list[str]) -> KindCounts:
        """For each drift kind: how many rows, and how many of them offer each of `repairs`."""
        wanted = set(repairs)
        return {
            kind: (int(entry[0]), {r: int(n) for r, n in entry[1].items() if r in wanted and n})
            for kind, entry in self.index().items()
        }

    def page_rows(self, windows: dict[str, tuple[int, int]]) -> dict[str, list[dict[str, Any]]]:
        """The rows of each kind in `windows` (kind → (offset, limit)), in stored order."""
        index = self.index()
        found: dict[str, list[dict[str, Any]]] = {}
        wanted: dict[str, list[int]] = {}
        for kind, (offset, limit) in windows.items():
            entry = index.get(kind) or [0, {}, [], []]
            head = entry[3] if len(entry) > 3 else []
            if offset + min(limit, entry[0] - offset) <= len(head):  # within the stored head
                found[kind] = head[offset : offset + limit]
            else:
                wanted[kind] = positions(entry[2], offset, limit)
        every = [p for places in wanted.values() for p in places]
        elements = dict(zip(every, self._elements(every), strict=True)) if every else {}
        for kind, places in wanted.items():
            found[kind] = [elements[p] for p in places]
        return {kind: found[kind] for kind in windows}

    def _elements(self, wanted: list[int]) -> list[dict[str, Any]]:
        """The list's elements at `wanted` positions, in that order; the list is parsed once
        per call, by the database."""
        connection = connections[self.using]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                path = "$[" + ", ".join(str(int(p)) for p in wanted) + "]"
                cursor.execute(
                    f"SELECT jsonb_path_query_array(drift, %s::jsonpath)::text FROM {TABLE} "
                    "WHERE id = %s",
                    [path, self.run_id],
                )
                return json.loads(cursor.fetchone()[0])
            chunks = [
                wanted[i : i + SQLITE_PATHS_PER_CALL]
                for i in range(0, len(wanted), SQLITE_PATHS_PER_CALL)
            ]
            calls = ", ".join(
                "json_extract(drift, " + ", ".join("%s" for _ in chunk) + ")" for chunk in chunks
            )
            params = [f"$[{int(p)}]" for chunk in chunks for p in chunk]
            cursor.execute(f"SELECT {calls} FROM {TABLE} WHERE id = %s", [*params, self.run_id])
            row = cursor.fetchone()
        found: list[dict[str, Any]] = []
        for chunk, value in zip(chunks, row, strict=True):
            # json_extract with one path returns the element itself, with several an array.
            found.extend([json.loads(value)] if len(chunk) == 1 else json.loads(value))
        return found
