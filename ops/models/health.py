"""Health checks: each run's result per check, and outages (consecutive failures as one row)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from ops.models.durations import duration_text


class CheckStatus(models.TextChoices):
    OK = "ok", "OK"
    WARNING = "warning", "Warning"
    DOWN = "down", "Down"

    @property
    def css_class(self) -> str:
        """The badge's classes (colours in cfadmin/static/cfadmin/cfadmin.css)."""
        return f"cf-check cf-check-{self.value}"

    @property
    def colour(self) -> str:
        """The same colour as the badge's, for SVG (a fill attribute, not a style)."""
        return CHECK_COLOURS[self.value]


CHECK_COLOURS = {"ok": "#198754", "warning": "#fd7e14", "down": "#dc3545"}


class HealthCheckResult(models.Model):
    """One run of one check: status, what it saw, how long it took."""

    check_name = models.CharField("check", max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=CheckStatus.choices)
    critical = models.BooleanField(default=False)
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [models.Index(fields=["check_name", "-checked_at"])]
        permissions = [("run_healthcheck", "Can run the health checks on demand")]

    def __str__(self) -> str:
        return f"{self.check_name}: {self.status}"

    @property
    def check_status(self) -> CheckStatus:
        return CheckStatus(self.status)


class OutageQuerySet(models.QuerySet):
    def open(self) -> OutageQuerySet:
        return self.filter(ended_at__isnull=True)


class Outage(models.Model):
    """Consecutive failures of one check, as one event (a flapping dependency is one row)."""

    check_name = models.CharField("check", max_length=64, db_index=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=1)
    first_message = models.TextField(blank=True)
    last_message = models.TextField(blank=True)

    objects = OutageQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["check_name"],
                condition=Q(ended_at__isnull=True),
                name="one_open_outage_per_check",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.check_name} outage from {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self) -> timedelta:
        return (self.ended_at or timezone.now()) - self.started_at

    @property
    def duration_text(self) -> str:
        return duration_text(self.duration)


def uptime(check_name: str, since: Any) -> float | None:
    """Share of results that were OK since a moment (None when there are none)."""
    results = HealthCheckResult.objects.filter(check_name=check_name, checked_at__gte=since)
    total = results.count()
    if not total:
        return None
    return results.filter(status=CheckStatus.OK).count() / total
