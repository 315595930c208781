"""Searching the audit trail by what support staff paste: an event id, an actor, a tenant
slug, a stack name, the beginning of a target ("Deploy #12", "customer-1/main"), an address.

Each word becomes an OR of predicates, each answered by an index: the id and the address
exactly, actor, target, tenant slug and stack name by their beginning. No join, so no DISTINCT;
and an OR on one table (unlike `pk IN (UNION …)`, which builds every match before sorting) lets
PostgreSQL read a common actor's page from the newest-first index and stop when it is full.

Only when nothing begins with the words are they looked for anywhere in those columns and the
message (LIKE '%x%', a read of the whole trail): "deployer" finds "cli:deployer".

Prefixes go through cfadmin/index_search.py (the pattern_ops indexes are migration 0004's and
Django's own `_like` indexes of db_index fields).
"""

from __future__ import annotations

import ipaddress

from django.db import connections
from django.db.models import Q, QuerySet

from cfadmin.index_search import prefix_q, search_terms

# Columns searched by their beginning, each with an index.
PREFIX_FIELDS = ("actor_repr", "target_repr", "tenant_slug", "stack_name")
# Columns the substring fallback reads (the address is matched exactly, it is no text).
SUBSTRING_FIELDS = (*PREFIX_FIELDS, "message")

HELP_TEXT = (
    "Event id, address, or the beginning of an actor, target, tenant slug or stack name; "
    "when nothing begins so, any part of those or of the message."
)


def _address(term: str) -> str | None:
    try:
        return str(ipaddress.ip_address(term))
    except ValueError:
        return None


def event_q(term: str, *, alone: bool = True, using: str = "default", indexed: bool = True) -> Q:
    """The events one word finds: an OR of indexed predicates on the trail itself (no join).
    The planner picks per word: a common actor is found by reading the newest events until
    the page is full, a rare slug by combining the indexes (BitmapOr) and sorting the few.
    An id or address counts only `alone` (the whole search): "thing 7" is no event #7."""
    # Slugs and stack names are stored lower-case; actors and targets as typed.
    variants = dict.fromkeys((term, term.lower()))
    condition = Q()
    for field in PREFIX_FIELDS:
        for variant in variants:
            condition |= prefix_q(field, variant, using=using, indexed=indexed)
    address = _address(term) if alone else None
    if address is not None:
        condition |= Q(address=address)
    if alone and term.isdigit():
        condition |= Q(pk=int(term))
    return condition


def audit_search_q(search: str, *, using: str = "default", indexed: bool = True) -> Q:
    """Events found by every word of `search` through indexes (all words, as the admin's own
    search), or by the whole phrase as the beginning of a column ("Deploy #12"). `indexed`
    False: the same events, read in the trail's order instead (see `sqlite_match_count`)."""
    terms = search_terms(search)
    if len(terms) == 1:
        return event_q(terms[0], using=using, indexed=indexed)
    condition = Q()
    for term in terms:
        condition &= event_q(term, alone=False, using=using, indexed=indexed)
    phrase = " ".join(terms)
    for field in PREFIX_FIELDS:
        condition |= prefix_q(field, phrase, using=using, indexed=indexed)
    return condition


# More matches than this and SQLite reads the trail newest first until the page is full.
COMMON_MATCHES = 2_000


def sqlite_match_count(found: QuerySet) -> int | None:
    """On SQLite, how many events the indexes find (an index count: a few ms even for a busy
    actor); None on PostgreSQL, whose planner needs no help.

    More than COMMON_MATCHES and SQLite is better off reading the page without its indexes:
    from them it takes every match and sorts them all for the first page, while reading the
    trail newest first fills a page of a common match after a few hundred rows. A rare match
    keeps the indexes (the same read would cover the whole trail)."""
    if connections[found.db].vendor != "sqlite":
        return None
    return found.order_by().count()


def audit_substring_q(search: str) -> Q:
    """Events containing every word of `search` in a searched column: reads the whole trail,
    for when audit_search_q finds nothing."""
    condition = Q()
    for term in search_terms(search):
        term_q = Q()
        for field in SUBSTRING_FIELDS:
            term_q |= Q(**{f"{field}__icontains": term})
        address = _address(term)
        if address is not None:
            term_q |= Q(address=address)
        condition &= term_q
    return condition
