"""What the health results list offers to narrow it: the checks that have results (from the
daily rollups: a few rows a day, not a scan of the results) and a search for the checks whose
name starts with the term, or for a status ("down").

Both end in `check_name IN (…)` or `status = …`, walks of ops.models.health's indexes, so they
cost the same at 500 results or 500,000. A search inside the free-text messages would read every
row, and the messages begin with the check's name anyway ("coolify_api: degraded")."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from ops.models import CheckStatus, HealthDailyRollup


def check_names(prefix: str = "") -> list[str]:
    """The checks with results still kept (rollups of the result retention period), sorted;
    only those whose name starts with `prefix` if given. One query on the rollups."""
    since = timezone.now().date() - timedelta(days=settings.HEALTH_RESULT_RETENTION_DAYS + 1)
    rollups = HealthDailyRollup.objects.filter(day__gte=since)
    if prefix:
        rollups = rollups.filter(check_name__startswith=prefix)
    return sorted(set(rollups.values_list("check_name", flat=True)))


def search_results(queryset: QuerySet, term: str) -> QuerySet:
    """The results matching `term`: of a check whose name starts with it (before any ':'), or
    with it as their status. An empty term matches all."""
    term = term.strip()
    if not term:
        return queryset
    name = term.split(":", 1)[0].strip()  # "coolify_api: degraded" → the check's name
    # No known check: the name itself (matches nothing, but unlike an empty IN it compiles,
    # which cfadmin.paginators' EXPLAIN needs).
    matches = Q(check_name__in=check_names(name) or [name])
    if term.lower() in CheckStatus.values:
        matches |= Q(status=term.lower())
    return queryset.filter(matches)
