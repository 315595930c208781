"""The day after a maintenance window, summarised on it: per health check, how many results
there were and which share was OK; the outages of that day (those that began inside the window
and were still going count too: they were not over when the maintenance was)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from cfadmin import audit
from cfadmin.models import AuditAction
from ops.models import CheckStatus, HealthCheckResult, MaintenanceWindow, Outage

MONITORED = timedelta(hours=24)
# Outages listed on the window; `outages` counts them all.
OUTAGES_LISTED = 50


def summary_due_at(window: MaintenanceWindow) -> datetime:
    return window.ends_at + MONITORED


def health_summary(window: MaintenanceWindow) -> dict[str, Any]:
    """The summary of [end, end + 24 h], counted by the database (two queries)."""
    since, until = window.ends_at, summary_due_at(window)
    rows = (
        HealthCheckResult.objects.filter(checked_at__gte=since, checked_at__lt=until)
        .order_by()
        .values("check_name")
        .annotate(results=Count("id"), ok=Count("id", filter=Q(status=CheckStatus.OK)))
    )
    checks = {
        row["check_name"]: {
            "results": row["results"],
            "ok": row["ok"],
            "ok_share": round(row["ok"] / row["results"], 4) if row["results"] else None,
        }
        for row in rows
    }
    outages = list(
        Outage.objects.filter(started_at__lt=until)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=since))
        .order_by("started_at")
        .values("id", "check_name", "started_at", "ended_at", "expected_maintenance_id")
    )
    for name, outage_count in _count_by_check(outages).items():
        checks.setdefault(name, {"results": 0, "ok": 0, "ok_share": None})["outages"] = outage_count
    for check in checks.values():
        check.setdefault("outages", 0)
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "checks": dict(sorted(checks.items())),
        "outages": len(outages),
        "outage_list": [
            {
                "id": row["id"],
                "check": row["check_name"],
                "started_at": row["started_at"].isoformat(),
                "ended_at": row["ended_at"].isoformat() if row["ended_at"] else None,
                "expected": row["expected_maintenance_id"] == window.pk,
            }
            for row in outages[:OUTAGES_LISTED]
        ],
    }


def _count_by_check(outages: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in outages:
        counts[row["check_name"]] = counts.get(row["check_name"], 0) + 1
    return counts


def summarise(
    window: MaintenanceWindow, actor: Any = None, *, now: datetime | None = None
) -> MaintenanceWindow:
    """Store the day-after summary on the window; refused (ValueError) before the day is over."""
    now = now or timezone.now()
    if now < summary_due_at(window):
        raise ValueError(
            f"the 24 hours after the window end at {summary_due_at(window):%Y-%m-%d %H:%M} UTC"
        )
    window.health_summary = health_summary(window)
    window.summarised_at = now
    window.save(update_fields=["health_summary", "summarised_at"])
    checks = window.health_summary["checks"]
    results = sum(check["results"] for check in checks.values())
    ok = sum(check["ok"] for check in checks.values())
    share = f"{ok / results:.1%}" if results else "no results"
    audit.record(
        actor=actor,
        action=AuditAction.OPERATION_RESULT,
        target=window,
        message=f"Maintenance 24h summary: {window.health_summary['outages']} outage(s), "
        f"{share} of {results} health results OK",
        changes={"outages": window.health_summary["outages"], "results": results, "ok": ok},
    )
    return window
