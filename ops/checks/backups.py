"""Health check "pocketbase_backup": PocketBase's newest backup is recent enough (warning when
older than POCKETBASE_BACKUP_MAX_AGE_HOURS, there is none, or PocketBase cannot say — its
being down is the "pocketbase" check's outage, not a second one of this check)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from ops.checks import Check
from ops.models import CheckStatus
from stacks.clients.errors import ClientError


def parse_modified(text: str) -> datetime | None:
    """PocketBase's UTC time text ("2023-05-19 16:25:57.542Z") as an aware datetime."""
    cleaned = text.strip().replace("T", " ").rstrip("Z").strip()
    for pattern in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def backup_age_result(
    backups: list[dict[str, Any]], *, now: datetime, max_age_hours: float
) -> tuple[str, str, dict[str, Any]]:
    """The check's verdict on a backup listing (PocketBaseClient.list_backups)."""
    dated = [(parse_modified(b.get("modified", "")), b) for b in backups]
    dated = [(at, b) for at, b in dated if at is not None]
    details: dict[str, Any] = {"backups": len(backups), "max_age_hours": max_age_hours}
    if not dated:
        return CheckStatus.WARNING, "PocketBase has no backup", details
    at, newest = max(dated, key=lambda pair: pair[0])
    age = now - at
    hours = age.total_seconds() / 3600
    details.update(newest=newest["key"], newest_at=at.isoformat(), age_hours=round(hours, 1))
    message = f"Newest PocketBase backup {newest['key']} is {hours:.1f} h old"
    if age > timedelta(hours=max_age_hours):
        return CheckStatus.WARNING, f"{message} (more than {max_age_hours:g} h)", details
    return CheckStatus.OK, message, details


def check_pocketbase_backup(ctx: Any) -> tuple[str, str, dict[str, Any]]:
    try:
        with ctx.pocketbase() as pocketbase:
            backups = pocketbase.list_backups()
    except ClientError as error:
        return CheckStatus.WARNING, f"Cannot list PocketBase's backups: {error}", {}
    return backup_age_result(
        backups,
        now=timezone.now(),
        max_age_hours=float(settings.POCKETBASE_BACKUP_MAX_AGE_HOURS),
    )


CHECKS: list[Check] = [
    Check("pocketbase_backup", check_pocketbase_backup, critical=False),
]
