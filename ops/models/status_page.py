"""What the public status page shows besides health (issue 16): incidents' public updates,
written apart from internal notes, and announced maintenance windows."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from ops.models.incidents import Incident


class PublicStatus(models.TextChoices):
    """A public update's stage, as status pages word it."""

    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"


class PublicUpdate(models.Model):
    """One update the public reads on the status page; never an internal note."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="public_updates")
    status = models.CharField(max_length=16, choices=PublicStatus.choices)
    message = models.TextField()
    posted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    posted_by_repr = models.CharField("by", max_length=150)
    posted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-posted_at", "-id"]
        indexes = [models.Index(fields=["incident", "posted_at"], name="ops_pubupd_incident_idx")]

    def __str__(self) -> str:
        return f"{self.get_status_display()}: {self.message[:60]}"


class MaintenanceWindowQuerySet(models.QuerySet):
    def announced(self) -> MaintenanceWindowQuerySet:
        return self.filter(announced_at__isnull=False, cancelled_at__isnull=True)

    def upcoming_or_current(self, now: datetime | None = None) -> MaintenanceWindowQuerySet:
        return self.filter(ends_at__gt=now or timezone.now())

    def covering(self, moment: datetime) -> MaintenanceWindowQuerySet:
        """Announced windows `moment` falls in: what goes wrong then is expected."""
        return self.announced().filter(starts_at__lte=moment, ends_at__gt=moment)


class MaintenanceWindow(models.Model):
    """A planned window (start, end, what, who). Announced on the status page when created;
    health alerts inside it are expected (issue 17 adds the automated before/after checks)."""

    title = models.CharField("what", max_length=200)
    public_message = models.TextField(
        blank=True, help_text="What customers read on the status page."
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="maintenance_windows",
        verbose_name="who",
    )
    checklist_run = models.ForeignKey(
        "ops.ChecklistRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="maintenance_windows",
        help_text="The maintenance procedure's run this window is for.",
    )
    announced_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The automated checks (issue 17, ops.maintenance.checks): before (shortly before the
    # start, or on demand) Coolify's version, a PocketBase backup and every live stack's
    # status; after (at the end or on demand) the version again and the stacks that ran
    # before and do not now; a day after the end, a summary of the health results. Stack ids
    # and statuses only.
    before_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    coolify_version_before = models.CharField(max_length=64, blank=True, editable=False)
    backup_name = models.CharField(max_length=150, blank=True, editable=False)
    backup_size = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    stacks_before = models.JSONField(default=dict, blank=True, editable=False)
    after_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    coolify_version_after = models.CharField(max_length=64, blank=True, editable=False)
    stopped_stacks = models.JSONField(default=list, blank=True, editable=False)
    stopped_count = models.PositiveIntegerField(null=True, blank=True, editable=False)
    check_errors = models.JSONField(default=dict, blank=True, editable=False)
    health_summary = models.JSONField(default=dict, blank=True, editable=False)
    summarised_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = MaintenanceWindowQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["ends_at"], name="ops_maint_ends_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="maintenance_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        starts, ends = timezone.localtime(self.starts_at), timezone.localtime(self.ends_at)
        return f"{self.title} ({starts:%Y-%m-%d %H:%M} to {ends:%H:%M} {ends:%Z})"

    def is_on(self, moment: datetime | None = None) -> bool:
        moment = moment or timezone.now()
        return self.cancelled_at is None and self.starts_at <= moment < self.ends_at

    @property
    def backup_taken(self) -> bool:
        """The before-checks' backup was made and PocketBase listed it."""
        return bool(self.backup_name) and self.backup_size is not None

    @property
    def summary_outages(self) -> int | None:
        """Outages in the day after the window (None: not summarised yet)."""
        if self.summarised_at is None:
            return None
        return int(self.health_summary.get("outages", 0))
