"""What every app's search shares: the words of a search, and "starts with" answered by an
index on both databases.

PostgreSQL's LIKE 'x%' uses a varchar_pattern_ops index (each app's migrations add them);
SQLite's LIKE ignores an ordinary index (it is case-insensitive), so there a prefix is the
range x <= value < x + U+FFFF, which the ordinary index answers (the names searched are ASCII).
"""

from __future__ import annotations

from django.db import connections
from django.db.models import CharField, F, Func, Q
from django.db.models.lookups import GreaterThanOrEqual, LessThan

# The highest code point of the Basic Multilingual Plane: above any character of a name.
PREFIX_END = "\uffff"


class Unindexed(Func):
    """`+column`: the same value, which SQLite will not look up in an index. For a condition
    matching much of a table, reading the table in the list's order and stopping when the page
    is full beats collecting every match from an index and sorting them all."""

    template = "+%(expressions)s"
    output_field = CharField()


def prefix_q(field: str, prefix: str, *, using: str = "default", indexed: bool = True) -> Q:
    """`field` starts with `prefix` (case as stored), answered by the field's index (on SQLite
    not by an index when `indexed` is False)."""
    if connections[using].vendor == "postgresql":
        return Q(**{f"{field}__startswith": prefix})
    if indexed:
        return Q(**{f"{field}__gte": prefix, f"{field}__lt": prefix + PREFIX_END})
    column = Unindexed(F(field))
    return Q(GreaterThanOrEqual(column, prefix), LessThan(column, prefix + PREFIX_END))


def search_terms(search: str) -> list[str]:
    """The words of a search (as the admin's own search splits them)."""
    return [word for word in search.strip().split() if word]
