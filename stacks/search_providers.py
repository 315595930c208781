"""Stacks and operations for the admin header's global search (cfadmin/global_search.py).

Stacks: what stacks.models.search looks up, each lookup cut at its first LIMIT + 1 rows in
index order, so that a word that begins every name costs what a rare one does: a Coolify or
PocketBase uuid or an id exactly, the beginning of a stack name, of a project name, of a domain;
then the stacks the last two found, and the domains of all. Stack names, domains, uuids and
slugs hold no spaces: a query with spaces finds no stack. A tenant's stacks are on the
tenant's page (the tenant is in the results).
Operations: by id ("42" or "#42"), the primary key.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, prefetch_related_objects
from django.utils.timezone import localtime

from cfadmin.global_search import (
    LIMIT,
    ResultGroup,
    SearchResult,
    admin_url,
    group,
    may_view,
    query_number,
)
from cfadmin.index_search import prefix_q
from stacks.models import Operation, Stack, StackDomain


def _exact_q(term: str) -> Q:
    """Stacks a uuid or an id names exactly (uuids as Coolify and PocketBase made them)."""
    exact = {term, term.lower()}
    condition = (
        Q(coolify_service_uuid__in=exact)
        | Q(coolify_project_uuid__in=exact)
        | Q(pocketbase_id__in=exact)
    )
    number = query_number(term)
    if number is not None:
        condition |= Q(pk=number)
    return condition


def find_stacks(user: Any, query: str) -> ResultGroup | None:
    """At most LIMIT stacks `query` finds, with their tenant, status and live domains; None
    if `user` may not view stacks."""
    if not may_view(user, Stack):
        return None
    if " " in query:
        return group(Stack, [], query)
    lower = query.lower()  # names and domains are stored lower-case
    # Only what a result shows: a stack's status detail and a tenant's notes can be long.
    stacks = (
        Stack.objects.select_related("tenant")
        .only("stack_name", "status", "tenant__slug")
        .order_by("stack_name", "id")
    )
    using = stacks.db
    # Each lookup is cut at LIMIT + 1 rows in its index's order (one OR would make the
    # database collect and sort every stack a short word begins).
    found = list(stacks.filter(_exact_q(query))[: LIMIT + 1])
    found += stacks.filter(prefix_q("stack_name", lower, using=using))[: LIMIT + 1]
    # These two in no order: PostgreSQL's pattern indexes find a beginning but do not sort.
    by_project = Stack.objects.filter(prefix_q("project_name", lower, using=using))
    more = list(by_project.order_by().values_list("pk", flat=True)[: LIMIT + 1])
    by_domain = StackDomain.objects.filter(prefix_q("domain", lower, using=using))
    more += by_domain.order_by().values_list("stack_id", flat=True)[: LIMIT + 1]
    missing = set(more) - {stack.pk for stack in found}
    if missing:
        found += stacks.filter(pk__in=missing)
    found = sorted({stack.pk: stack for stack in found}.values(), key=_by_name)
    live_domains = (
        StackDomain.objects.filter(released_at__isnull=True)
        .only("stack_id", "domain")
        .order_by("domain")
    )
    prefetch_related_objects(found, Prefetch("domains", queryset=live_domains))
    results = [
        SearchResult(
            label=stack.stack_name,
            url=admin_url(stack),
            detail=" · ".join(
                [
                    stack.tenant.slug,
                    stack.get_status_display(),
                    *(domain.domain for domain in stack.domains.all()),
                ]
            ),
        )
        for stack in found
    ]
    return group(Stack, results, query)


def _by_name(stack: Stack) -> tuple[str, int]:
    return stack.stack_name, stack.pk


def find_operations(user: Any, query: str) -> ResultGroup | None:
    """The operation the query names by id; None if `user` may not view operations."""
    if not may_view(user, Operation):
        return None
    number = query_number(query)
    if number is None:
        return group(Operation, [], query)
    rows = Operation.objects.filter(pk=number).select_related("stack")
    results = [
        SearchResult(
            label=str(operation),
            url=admin_url(operation),
            detail=" · ".join(
                [
                    operation.stack.stack_name,
                    operation.get_status_display(),
                    f"requested {localtime(operation.requested_at):%Y-%m-%d %H:%M}",
                ]
            ),
        )
        for operation in rows
    ]
    return group(Operation, results, query)
