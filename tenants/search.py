"""Tenants for the admin header's global search (cfadmin/global_search.py): by id, or by the
beginning of the slug, the name or the contact address (case ignored), each an index look-up
(slug: its pattern index; name and contact: lower() indexes of migration 0003)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from cfadmin.global_search import (
    LIMIT,
    ResultGroup,
    SearchResult,
    admin_url,
    group,
    lower_prefix_q,
    may_view,
    query_number,
)
from cfadmin.index_search import prefix_q
from tenants.models import Tenant


def find(user: Any, query: str) -> ResultGroup | None:
    """At most LIMIT tenants matching `query`; None if `user` may not view tenants."""
    if not may_view(user, Tenant):
        return None
    tenants = Tenant.objects.only("slug", "name", "contact_email", "status")  # not the notes
    tenants, by_name = lower_prefix_q(tenants, "name", query)
    tenants, by_contact = lower_prefix_q(tenants, "contact_email", query)
    condition = prefix_q("slug", query.lower(), using=tenants.db) | by_name | by_contact
    number = query_number(query)
    if number is not None:
        condition |= Q(pk=number)
    rows = tenants.filter(condition).order_by("slug")[: LIMIT + 1]
    results = [
        SearchResult(
            label=tenant.slug,
            url=admin_url(tenant),
            detail=" · ".join(
                part
                for part in (tenant.name, tenant.contact_email, tenant.get_status_display())
                if part
            ),
        )
        for tenant in rows
    ]
    return group(Tenant, results, query)
