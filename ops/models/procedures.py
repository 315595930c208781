"""Runbook procedures, their categories and steps, and the probes a machine can run for a step."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class ProcedureCategory(models.TextChoices):
    VALIDATION = "validation", "Validation"
    MONITORING = "monitoring", "Monitoring"
    MAINTENANCE = "maintenance", "Maintenance"
    EMERGENCY = "emergency", "Emergency"
    SECURITY = "security", "Security incident"


# Offered first inside an incident, and shown with the escalation contacts.
URGENT_CATEGORIES = (ProcedureCategory.EMERGENCY, ProcedureCategory.SECURITY)


class Procedure(models.Model):
    """A runbook procedure; a change makes a new version, so old runs keep their steps."""

    slug = models.SlugField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    title = models.CharField(max_length=200)
    category = models.CharField(max_length=16, choices=ProcedureCategory.choices)
    when = models.CharField(max_length=300, blank=True, help_text="When to run it.")
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True, help_text="The version offered for new runs.")

    class Meta:
        ordering = ["category", "title", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="procedure_version_unique"),
            models.UniqueConstraint(
                fields=["slug"], condition=Q(active=True), name="one_active_version_per_procedure"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"

    @property
    def needs_stack(self) -> bool:
        """Validation procedures check one stack: a run of one needs it."""
        return self.category == ProcedureCategory.VALIDATION

    @property
    def is_urgent(self) -> bool:
        return self.category in URGENT_CATEGORIES

    def has_probes(self) -> bool:
        """Whether a machine checks any of its steps (a new run then queues the probes)."""
        return self.steps.exclude(probe="").exists()


class Probe(models.TextChoices):
    """Checks a machine can make for a checklist item (ops/probes.py)."""

    SERVICE_PRESENT = "service_present", "Service present in Coolify and healthy"
    DOMAIN_RESOLVES = "domain_resolves", "Domain resolves (DNS)"
    HTTPS_SERVES = "https_serves", "Domain serves HTTPS"
    RECORD_RUNNING = "record_running", "PocketBase record present with status running"
    LOGS_SHOW_STARTUP = "logs_show_startup", "Container logs show start-up"
    SERVICE_GONE = "service_gone", "Service gone from Coolify"
    DOMAIN_NOT_SERVED = "domain_not_served", "Domain no longer served"
    RECORD_GONE = "record_gone", "PocketBase record gone"
    COOLIFY_API = "coolify_api", "Coolify API answers"
    POCKETBASE_HEALTH = "pocketbase_health", "PocketBase answers"
    ACTIVE_STACKS = "active_stacks", "Active stacks match cfadmin"
    DISK_USAGE = "disk_usage", "Disk usage below the threshold"
    # Inside an incident (issue 15): verified by the incident actions' outcomes (ops/probes.py).
    EVIDENCE_CAPTURED = "evidence_captured", "Evidence captured on the incident"
    STACKS_ISOLATED = "stacks_isolated", "The incident's stacks are isolated"
    STACKS_STOPPED = "stacks_stopped", "The incident's stacks are stopped"
    KEYS_ROTATED = "keys_rotated", "Every rotation of the exposed key succeeded"
    PATTERN_IDENTIFIED = "pattern_identified", "Mass-failure pattern identified"
    VOLUME_EXISTS = "volume_exists", "The stack's volumes still exist"
    # Measured by health checks (ops/checks).
    SERVER_RESOURCES = "server_resources", "Server memory, disk and load measured"
    CONTAINER_RESOURCES = "container_resources", "Containers within their stacks' limits"
    VOLUME_SIZES = "volume_sizes", "Volume sizes per tenant measured"
    POCKETBASE_BACKUP = "pocketbase_backup", "A recent PocketBase backup exists"
    # On the status page (issue 16).
    MAINTENANCE_ANNOUNCED = "maintenance_announced", "Maintenance announced 48h ahead"
    STATUS_UPDATE_POSTED = "status_update_posted", "Public status update posted"
    # By a maintenance window's automated checks (issue 17, ops/maintenance).
    MAINTENANCE_BACKUP = "maintenance_backup", "The maintenance window's backup was taken"
    MAINTENANCE_STACKS_RUNNING = (
        "maintenance_stacks_running",
        "After the maintenance, every stack that ran before runs",
    )
    MAINTENANCE_MONITORED = "maintenance_monitored", "24h after the maintenance: no outage"


class ProcedureStep(models.Model):
    procedure = models.ForeignKey(Procedure, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    text = models.CharField(max_length=300)
    command = models.TextField(blank=True, help_text="The runbook's command for this step.")
    probe = models.CharField(
        max_length=32,
        choices=Probe.choices,
        blank=True,
        help_text="Verified by cfadmin itself when set.",
    )

    class Meta:
        ordering = ["procedure", "position"]
        constraints = [
            models.UniqueConstraint(fields=["procedure", "position"], name="step_order_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.text}"
