"""Mass-failure triage (issue 15): which stacks were seen down since when, the mass failure an
incident is about (its stacks and their pattern), its restart waves, and the one open
auto-incident per rule (a unique key, so two health runs at once open one incident)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from ops.models.incidents import Incident
from stacks.models import Operation, Stack


class StackDownSighting(models.Model):
    """A stack expected running that the active_stacks check saw not running, since when
    (first seen); removed when it runs again or a person stops, isolates or deletes it."""

    stack = models.OneToOneField(Stack, on_delete=models.CASCADE, related_name="down_sighting")
    first_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=64, blank=True, help_text="What Coolify said.")

    def __str__(self) -> str:
        return f"{self.stack_id} down since {self.first_seen_at:%Y-%m-%d %H:%M}"


class MassFailure(models.Model):
    """Several stacks that left `running` within a short window: the incident about them, the
    stacks and their pattern (groups by template, tenant, server and first-seen minute)."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="mass_failure")
    detected_at = models.DateTimeField(default=timezone.now)
    pattern = models.JSONField(default=dict, blank=True)
    stacks = models.ManyToManyField(Stack, blank=True, related_name="mass_failures")

    def __str__(self) -> str:
        return f"Mass failure of incident #{self.incident_id}"


class WaveStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the previous wave"
    RUNNING = "running", "Starting"
    SUCCEEDED = "succeeded", "Healthy"
    FAILED = "failed", "Failed"
    HALTED = "halted", "Not started (restart halted)"


class RestartWave(models.Model):
    """One wave of a mass failure's gradual restart: its stacks' start operations; it begins
    only once the wave before it is healthy (ops.response.mass_failure_waves)."""

    mass_failure = models.ForeignKey(MassFailure, on_delete=models.CASCADE, related_name="waves")
    number = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=WaveStatus.choices, default=WaveStatus.PENDING)
    stacks = models.ManyToManyField(Stack, related_name="+")
    operations = models.ManyToManyField(Operation, blank=True, related_name="+")
    message = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_repr = models.CharField("requested by", max_length=150, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["mass_failure", "number"]
        constraints = [
            models.UniqueConstraint(fields=["mass_failure", "number"], name="one_wave_per_number")
        ]

    def __str__(self) -> str:
        return f"Wave {self.number} ({self.status})"

    @property
    def wave_status(self) -> WaveStatus:
        return WaveStatus(self.status)


class AutoIncident(models.Model):
    """The open incident an automatic rule ("platform_down", "mass_failure") joins instead of
    opening another. `key` is unique: of two health runs racing, one inserts, the other joins."""

    key = models.CharField(max_length=32, unique=True)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.key}: incident #{self.incident_id}"
