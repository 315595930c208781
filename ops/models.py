"""The runbook's operations side: health checks with history and outages, procedures run as
checklists (with items a machine verifies), and the escalation table.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from stacks.models import Stack
from tenants.models import Tenant


class CheckStatus(models.TextChoices):
    OK = "ok", "OK"
    WARNING = "warning", "Warning"
    DOWN = "down", "Down"


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
    def is_ok(self) -> bool:
        return self.status == CheckStatus.OK


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


class RunStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"


class ChecklistRun(models.Model):
    """One run of a procedure, optionally for a tenant, a stack or an incident."""

    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="runs")
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="checklist_runs"
    )
    stack = models.ForeignKey(
        Stack, null=True, blank=True, on_delete=models.SET_NULL, related_name="checklist_runs"
    )
    incident = models.ForeignKey(
        "Incident",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="checklist_runs",
    )
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.OPEN, db_index=True
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_repr = models.CharField("started by", max_length=150)
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        subject = (
            self.stack
            or self.tenant
            or (f"incident #{self.incident_id}" if self.incident_id else "")
        )
        return f"{self.procedure.title}{f' — {subject}' if subject else ''} #{self.pk}"

    def audit_scope(self) -> tuple[str, str]:
        if self.stack_id:
            return self.stack.audit_scope()
        return (self.tenant.slug if self.tenant_id else ""), ""

    @property
    def is_completed(self) -> bool:
        return self.status == RunStatus.COMPLETED

    @property
    def progress(self) -> tuple[int, int]:
        items = list(self.items.all())
        return sum(item.is_settled for item in items), len(items)


class ItemState(models.TextChoices):
    PENDING = "pending", "To do"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    PASSED = "passed", "Verified automatically"
    FAILED = "failed", "Automatic check failed"
    OVERRIDDEN = "overridden", "Overridden by a person"


SETTLED_STATES = (ItemState.DONE, ItemState.SKIPPED, ItemState.PASSED, ItemState.OVERRIDDEN)


class ChecklistItem(models.Model):
    run = models.ForeignKey(ChecklistRun, on_delete=models.CASCADE, related_name="items")
    step = models.ForeignKey(ProcedureStep, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=ItemState.choices, default=ItemState.PENDING)
    note = models.TextField(blank=True, help_text="What you saw, or why it was skipped.")
    evidence = models.JSONField(default=dict, blank=True, help_text="The automatic probe's output.")
    settled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    settled_by_repr = models.CharField("by", max_length=150, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "step__position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step"], name="one_item_per_step"),
        ]

    def __str__(self) -> str:
        return f"{self.step.text}: {self.get_state_display()}"

    @property
    def is_pending(self) -> bool:
        return self.state == ItemState.PENDING

    @property
    def is_failed(self) -> bool:
        return self.state == ItemState.FAILED

    @property
    def is_settled(self) -> bool:
        return self.state in SETTLED_STATES

    def audit_scope(self) -> tuple[str, str]:
        return self.run.audit_scope()


class EscalationContact(models.Model):
    """The runbook's escalation table, with the details a person needs at 3 a.m."""

    issue_type = models.CharField(max_length=100, unique=True)
    team = models.CharField(max_length=100)
    response_minutes = models.PositiveIntegerField(help_text="Target time to respond.")
    business_hours_only = models.BooleanField(
        default=False, help_text="The target counts business hours only."
    )
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower comes first.")
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    chat = models.CharField(max_length=200, blank=True, help_text="Channel or pager handle.")
    hours = models.CharField(max_length=100, blank=True, default="24/7")
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["priority", "issue_type"]

    def __str__(self) -> str:
        return f"{self.issue_type} → {self.team}"

    @property
    def response_target(self) -> str:
        minutes = self.response_minutes
        text = f"{minutes // 60}h" if minutes % 60 == 0 and minutes >= 60 else f"{minutes}min"
        return f"{text} business" if self.business_hours_only else text

    def response_due(self, start: datetime) -> datetime:
        """When this team should have responded to something raised at `start`."""
        if self.business_hours_only:
            return settings.BUSINESS_HOURS.add(start, self.response_minutes)
        return start + timedelta(minutes=self.response_minutes)


class Severity(models.TextChoices):
    SEV1 = "sev1", "SEV1 — platform down or data at risk"
    SEV2 = "sev2", "SEV2 — many customers affected"
    SEV3 = "sev3", "SEV3 — one customer affected"
    SEV4 = "sev4", "SEV4 — minor, no customer impact"


class ResponseState(models.TextChoices):
    """How an incident's first response stands against its target."""

    MET = "met", "responded in time"
    MISSED = "missed", "responded late"
    OVERDUE = "overdue", "response overdue"
    PENDING = "pending", "awaiting response"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    MITIGATED = "mitigated", "Mitigated"
    RESOLVED = "resolved", "Resolved"


# Where an incident may go from each status; "resolved → open" is a reopening.
INCIDENT_TRANSITIONS: dict[str, tuple[str, ...]] = {
    IncidentStatus.OPEN: (
        IncidentStatus.ACKNOWLEDGED,
        IncidentStatus.MITIGATED,
        IncidentStatus.RESOLVED,
    ),
    IncidentStatus.ACKNOWLEDGED: (IncidentStatus.MITIGATED, IncidentStatus.RESOLVED),
    IncidentStatus.MITIGATED: (IncidentStatus.ACKNOWLEDGED, IncidentStatus.RESOLVED),
    IncidentStatus.RESOLVED: (IncidentStatus.OPEN,),
}


class IncidentQuerySet(models.QuerySet):
    def unresolved(self) -> IncidentQuerySet:
        return self.exclude(status=IncidentStatus.RESOLVED)


class Incident(models.Model):
    """Something wrong that people work on: a timeline, who responds by when, what it touches."""

    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.SEV3)
    escalation = models.ForeignKey(
        EscalationContact,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incidents",
        verbose_name="issue type",
        help_text="Who responds, and the response-time target (the escalation table).",
    )
    status = models.CharField(
        max_length=16,
        choices=IncidentStatus.choices,
        default=IncidentStatus.OPEN,
        db_index=True,
    )
    summary = models.TextField(blank=True, help_text="What is happening, who is affected.")
    resolution = models.TextField(blank=True, help_text="What fixed it (required to resolve).")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_incidents",
        help_text="The person working it.",
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_by_repr = models.CharField("opened by", max_length=150, blank=True)
    opened_at = models.DateTimeField(default=timezone.now, db_index=True)
    response_due_at = models.DateTimeField("respond by", null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    tenants = models.ManyToManyField(Tenant, blank=True, related_name="incidents")
    stacks = models.ManyToManyField(Stack, blank=True, related_name="incidents")
    outages = models.ManyToManyField(Outage, blank=True, related_name="incidents")

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def audit_scope(self) -> tuple[str, str]:
        return "", ""

    def can_become(self, status: str) -> bool:
        return status in INCIDENT_TRANSITIONS.get(self.status, ())

    def set_response_target(self, since: datetime | None = None) -> None:
        """Respond-by from the escalation contact, counted from `since` (default: opening)."""
        self.response_due_at = (
            self.escalation.response_due(since or self.opened_at) if self.escalation_id else None
        )

    @property
    def response_state(self) -> ResponseState | str:
        """A ResponseState, or '' without a target."""
        if self.response_due_at is None:
            return ""
        if self.acknowledged_at is not None:  # set by the first move out of "open"
            if self.acknowledged_at <= self.response_due_at:
                return ResponseState.MET
            return ResponseState.MISSED
        if timezone.now() > self.response_due_at:
            return ResponseState.OVERDUE
        return ResponseState.PENDING

    @property
    def duration_text(self) -> str:
        return duration_text((self.resolved_at or timezone.now()) - self.opened_at)


class IncidentEventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    NOTE = "note", "Note"
    STATUS = "status", "Status changed"
    ESCALATED = "escalated", "Escalated"
    CHANGED = "changed", "Details changed"
    CHECKLIST = "checklist", "Checklist"
    OUTAGE = "outage", "Outage"


class IncidentEvent(models.Model):
    """One line of an incident's timeline; appended, never edited."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=IncidentEventKind.choices)
    message = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_repr = models.CharField("by", max_length=150)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_kind_display()}: {self.message[:60]}"


def duration_text(duration: timedelta) -> str:
    seconds = max(0, int(duration.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def uptime(check_name: str, since: Any) -> float | None:
    """Share of results that were OK since a moment (None when there are none)."""
    results = HealthCheckResult.objects.filter(check_name=check_name, checked_at__gte=since)
    total = results.count()
    if not total:
        return None
    return results.filter(status=CheckStatus.OK).count() / total
