"""The admin header's global search (issue 14): one box that finds tenants, stacks, incidents,
operations and users, grouped by kind.

cfadmin knows no other app (dependencies point `cfadmin ← tenants ← stacks ← ops`): each app
offers a provider, a function named in settings.GLOBAL_SEARCH_PROVIDERS that takes the user and
the query and returns its group, or None when the user may not view that kind. Every provider
answers from index look-ups (exact ids and uuids, beginnings of names), never by reading a
whole table, and returns at most LIMIT results, so a search costs about the same at 100 stacks
as at 10,000 (`make bench`: bench/search.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db.models import Model, Q, QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.module_loading import import_string
from django.utils.text import capfirst

from cfadmin.index_search import prefix_q
from cfadmin.permissions import may

LIMIT = 8  # results per kind: the rest is one click away in the kind's own list
MAX_QUERY_LENGTH = 100
# Ids beyond a 64-bit integer are no id: PostgreSQL would refuse the comparison.
MAX_ID_DIGITS = 18
_NUMBER = re.compile(rf"#?(\d{{1,{MAX_ID_DIGITS}}})")
# Control characters (NUL above all: PostgreSQL refuses it in a string).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SearchResult:
    label: str
    url: str
    detail: str = ""


@dataclass
class ResultGroup:
    """One kind's results; `more_url` is the kind's list searched for the same words, shown
    when the group was cut at LIMIT."""

    kind: str
    results: list[SearchResult] = field(default_factory=list)
    more_url: str = ""


Provider = Callable[[Any, str], ResultGroup | None]


def clean_query(raw: str) -> str:
    """The query as searched: control characters dropped, spaces collapsed, at most
    MAX_QUERY_LENGTH characters."""
    return " ".join(_CONTROL.sub(" ", raw or "").split())[:MAX_QUERY_LENGTH]


def query_number(query: str) -> int | None:
    """The id a query names ("42" or "#42"), if it is one."""
    match = _NUMBER.fullmatch(query)
    return int(match.group(1)) if match else None


def may_view(user: Any, model: type[Model]) -> bool:
    """The admin's own rule: viewing a kind needs its view or its change permission."""
    opts = model._meta
    return any(
        may(user, f"{opts.app_label}.{get_permission_codename(action, opts)}")
        for action in ("view", "change")
    )


def lower_prefix_q(queryset: QuerySet, field_name: str, prefix: str) -> tuple[QuerySet, Q]:
    """`field_name` starts with `prefix` ignoring case, answered by an index on
    lower(field_name) (the owning app's migration makes it). Returns the queryset with the
    lowered field as an alias, and the condition on it."""
    alias = f"{field_name}_lower"
    return (
        queryset.alias(**{alias: Lower(field_name)}),
        prefix_q(alias, prefix.lower(), using=queryset.db),
    )


def admin_url(obj: Model) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def group(model: type[Model], results: list[SearchResult], query: str) -> ResultGroup:
    """A kind's group, named after the model ("Stacks"); cut at LIMIT, with a link to the
    kind's list searched for `query`. Providers fetch LIMIT + 1 rows to know whether there
    are more."""
    opts = model._meta
    more_url = ""
    if len(results) > LIMIT:
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        more_url = f"{changelist}?{urlencode({'q': query})}"
    kind = capfirst(str(opts.verbose_name_plural))
    return ResultGroup(kind=kind, results=results[:LIMIT], more_url=more_url)


@cache
def providers() -> tuple[Provider, ...]:
    return tuple(import_string(path) for path in settings.GLOBAL_SEARCH_PROVIDERS)


def search(user: Any, query: str) -> list[ResultGroup]:
    """The groups with results for `query`, in the order of GLOBAL_SEARCH_PROVIDERS; only
    the kinds `user` may view."""
    query = clean_query(query)
    if not query:
        return []
    found = (provider(user, query) for provider in providers())
    return [g for g in found if g is not None and g.results]


def search_view(request: HttpRequest) -> HttpResponse:
    """The results page (GET ?q=); the admin site's admin_view wraps it (staff, logged in)."""
    query = clean_query(request.GET.get("q", ""))
    groups = search(request.user, query)
    context = {
        **admin.site.each_context(request),
        "title": f"Search: {query}" if query else "Search",
        "query": query,
        "global_search_query": query,  # the header's box keeps what was searched
        "groups": groups,
        "searched": bool(query),
        "limit": LIMIT,
    }
    return TemplateResponse(request, "admin/cfadmin/global_search_results.html", context)
