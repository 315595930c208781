"""Staff users for the admin header's global search (cfadmin/global_search.py): by the
beginning of the username, e-mail address, first or last name, case ignored. Users are the
staff (dozens): django.contrib.auth's table has no lower() indexes and needs none."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from cfadmin.global_search import LIMIT, ResultGroup, SearchResult, admin_url, group, may_view


def find_users(user: Any, query: str) -> ResultGroup | None:
    """At most LIMIT users matching `query`; None if `user` may not view users."""
    User = get_user_model()
    if not may_view(user, User):
        return None
    condition = Q()
    for name in ("username", "email", "first_name", "last_name"):
        condition |= Q(**{f"{name}__istartswith": query})
    rows = User.objects.filter(condition).order_by("username")[: LIMIT + 1]
    results = [
        SearchResult(
            label=found.get_username(),
            url=admin_url(found),
            detail=" · ".join(
                part
                for part in (
                    found.get_full_name(),
                    found.email,
                    "" if found.is_active else "inactive",
                )
                if part
            ),
        )
        for found in rows
    ]
    return group(User, results, query)
