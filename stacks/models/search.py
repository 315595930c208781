"""Finding stacks, tenants and operations by what support staff paste: an id, a Coolify or
PocketBase uuid, a slug, a stack or project name, a domain.

Each word becomes `pk IN (a UNION of lookups)`, every lookup answered by an index: ids and
uuids exactly, names, slugs and domains by their beginning. No join repeats a stack, so the
admin needs no DISTINCT, and a search costs about the same at 100 stacks as at 10,000.

Only when nothing begins with the words are they looked for anywhere in stack names and
domains ("123-llm", "customer123.com"). That needs LIKE '%x%': PostgreSQL may answer it with
the pg_trgm GIN indexes of migration 0005 (its planner takes them when a table is large enough
for them to beat a scan); SQLite reads the two columns through.

Prefixes go through cfadmin/index_search.py (the pattern_ops indexes are migration 0005's).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from cfadmin.index_search import prefix_q, search_terms


def stack_ids(term: str, *, substring: bool = False, using: str = "default") -> QuerySet:
    """The ids of the stacks one word finds, as one UNION of indexed lookups (a subquery).
    `substring`: also stack names and domains that merely contain it."""
    from stacks.models.domain import StackDomain
    from stacks.models.stack import Stack

    stacks = Stack.objects.using(using).order_by()
    domains = StackDomain.objects.using(using).order_by()
    lower = term.lower()  # slugs, names and domains are stored lower-case
    exact = {term, lower}
    lookups = [
        stacks.filter(
            Q(coolify_service_uuid__in=exact)
            | Q(coolify_project_uuid__in=exact)
            | Q(pocketbase_id__in=exact)
        ),
        stacks.filter(prefix_q("stack_name", lower, using=using)),
        stacks.filter(prefix_q("project_name", lower, using=using)),
        stacks.filter(prefix_q("tenant__slug", lower, using=using)),
    ]
    found = [lookup.values("pk") for lookup in lookups]
    found.append(domains.filter(prefix_q("domain", lower, using=using)).values("stack_id"))
    if substring:
        found.append(stacks.filter(stack_name__contains=lower).values("pk"))
        found.append(domains.filter(domain__contains=lower).values("stack_id"))
    if term.isdigit():
        found.append(stacks.filter(pk=int(term)).values("pk"))
    return found[0].union(*found[1:])


def stack_search_q(search: str, *, substring: bool = False, using: str = "default") -> Q:
    """Stacks found by every word of `search` (as the admin's own search: all words)."""
    condition = Q()
    for term in search_terms(search):
        condition &= Q(pk__in=stack_ids(term, substring=substring, using=using))
    return condition


def tenant_search_q(search: str, *, using: str = "default") -> Q:
    """Tenants by id, slug, name or contact (their beginning), or owning a stack a word finds
    (a uuid, a stack name, a domain). Tenants are few (a thousand): name and contact need no
    index of their own."""
    from stacks.models.stack import Stack

    condition = Q()
    for term in search_terms(search):
        lower = term.lower()
        owners = Stack.objects.using(using).filter(pk__in=stack_ids(term, using=using))
        term_q = (
            prefix_q("slug", lower, using=using)
            | Q(name__istartswith=term)
            | Q(contact_email__istartswith=term)
            | Q(pk__in=owners.order_by().values("tenant_id"))
        )
        if term.isdigit():
            term_q |= Q(pk=int(term))
        condition &= term_q
    return condition


def operation_search_q(search: str, *, using: str = "default") -> Q:
    """Operations by id, by their stack (as the stack search finds it) or by who asked (the
    beginning of the name)."""
    from stacks.models.operation import Operation

    operations = Operation.objects.using(using).order_by()
    condition = Q()
    for term in search_terms(search):
        by_stack = operations.filter(stack_id__in=stack_ids(term, using=using))
        others = []
        requester = operations.filter(prefix_q("requested_by_repr", term, using=using))
        # Asked first (one index probe): an OR or UNION with the stack lookup would make the
        # database read every operation to sort a few; a plain stack_id IN reads only theirs.
        if requester.exists():
            others.append(requester)
        if term.isdigit():
            others.append(operations.filter(pk=int(term)))
        if not others:
            condition &= Q(stack_id__in=stack_ids(term, using=using))
            continue
        found = [by_stack.values("pk"), *(other.values("pk") for other in others)]
        condition &= Q(pk__in=found[0].union(*found[1:]))
    return condition
