"""Health data with a lifetime: results, hourly rollups, HTTPS changes and notifications are kept
HEALTH_RESULT_RETENTION_DAYS, daily rollups HEALTH_ROLLUP_RETENTION_DAYS, HTTPS states only while
their domain is live. Hourly rollups only serve the part-day where an uptime window starts, so
they go with the results (an hour goes once it has ended before the results' cutoff).

Deleting is safe at any time: every result was counted in its day's and hour's rollups in the
transaction that stored it (ops.health.record), so nothing is lost from uptime. Rows go in
batches of HEALTH_PRUNE_BATCH, each its own short transaction, so a large backlog never holds a
long lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Model, QuerySet
from django.utils import timezone

from ops.https_domains import live_domains
from ops.models import (
    WAITING_STATES,
    HealthCheckResult,
    HealthDailyRollup,
    HealthHourlyRollup,
    HttpsDomainChange,
    HttpsDomainState,
    Notification,
)
from ops.models.health import utc_day, utc_hour


def delete_in_batches(rows: QuerySet[Model], batch: int) -> int:
    """Delete `rows` a batch of primary keys at a time (oldest first); returns how many."""
    deleted = 0
    while True:
        ids = list(rows.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        # Autocommit: each batch commits by itself (no outer transaction holds the locks).
        deleted += rows.model._default_manager.filter(pk__in=ids).delete()[0]


def prune_health_data(now: datetime | None = None, *, batch: int | None = None) -> dict[str, int]:
    """Delete what has outlived its retention; returns how many rows of each kind went."""
    now = now or timezone.now()
    batch = batch or settings.HEALTH_PRUNE_BATCH
    results_before = now - timedelta(days=settings.HEALTH_RESULT_RETENTION_DAYS)
    rollups_before = utc_day(now) - timedelta(days=settings.HEALTH_ROLLUP_RETENTION_DAYS)
    return {
        "results": delete_in_batches(
            HealthCheckResult.objects.filter(checked_at__lt=results_before), batch
        ),
        "rollups": delete_in_batches(
            HealthDailyRollup.objects.filter(day__lt=rollups_before), batch
        ),
        "hourly_rollups": delete_in_batches(
            HealthHourlyRollup.objects.filter(hour__lt=utc_hour(results_before)), batch
        ),
        "https_changes": delete_in_batches(
            HttpsDomainChange.objects.filter(changed_at__lt=results_before), batch
        ),
        "https_states": prune_released_domain_states(batch),
        # Sent (or given up) notifications: kept as long as the health results; a row still
        # waiting is never deleted.
        "notifications": delete_in_batches(
            Notification.objects.filter(created_at__lt=results_before).exclude(
                status__in=WAITING_STATES
            ),
            batch,
        ),
    }


def prune_released_domain_states(batch: int) -> int:
    """States of domains no longer live (released, stack stopped or deleted); their changes
    stay for the retention period. A domain live again is probed as new, first."""
    live = set(live_domains())
    gone = [
        pk
        for pk, domain in HttpsDomainState.objects.values_list("pk", "domain").iterator()
        if domain not in live
    ]
    deleted = 0
    for start in range(0, len(gone), batch):
        deleted += HttpsDomainState.objects.filter(pk__in=gone[start : start + batch]).delete()[0]
    return deleted
