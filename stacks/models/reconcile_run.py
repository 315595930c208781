"""One comparison of cfadmin's records with Coolify and PocketBase, and its findings."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ReconcileRun(models.Model):
    """One comparison of cfadmin with Coolify and PocketBase, and the drift it found."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by_repr = models.CharField("requested by", max_length=150)
    stacks_checked = models.PositiveIntegerField(default=0)
    drift = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, help_text="Why the comparison could not be made.")
    note = models.TextField(blank=True, help_text="What was repaired just before it.")

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [("reconcile_stacks", "Can reconcile, repair drift and import stacks")]

    def __str__(self) -> str:
        return f"Reconcile {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def drift_count(self) -> int:
        return len(self.drift)

    @classmethod
    def latest_finished(cls) -> ReconcileRun | None:
        """The report to act on: the newest comparison that ended (one may be running now)."""
        return cls.objects.filter(finished_at__isnull=False).first()
