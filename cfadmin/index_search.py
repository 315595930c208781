"""What every app's search shares: the words of a search, and "starts with" answered by an
index on both databases.

PostgreSQL's LIKE 'x%' uses a varchar_pattern_ops index (each app's migrations add them);
SQLite's LIKE ignores an ordinary index (it is case-insensitive), so there a prefix is the
range x <= value < x + U+FFFF, which the ordinary index answers (the names searched are ASCII).
"""

from __future__ import annotations

from django.db import connections
from django.db.models import Q

# The highest code point of the Basic Multilingual Plane: above any character of a name.
PREFIX_END = "\uffff"


def prefix_q(field: str, prefix: str, *, using: str = "default") -> Q:
    """`field` starts with `prefix` (case as stored), answered by the field's index."""
    if connections[using].vendor == "postgresql":
        return Q(**{f"{field}__startswith": prefix})
    return Q(**{f"{field}__gte": prefix, f"{field}__lt": prefix + PREFIX_END})


def search_terms(search: str) -> list[str]:
    """The words of a search (as the admin's own search splits them)."""
    return [word for word in search.strip().split() if word]
