"""Incidents: severity, status and its allowed moves, the response target, and the timeline."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from cfadmin.index_search import prefix_q, search_terms
from ops.models.contacts import EscalationContact
from ops.models.durations import duration_text
from ops.models.health import Outage
from stacks.models import Stack
from tenants.models import Tenant


class Severity(models.TextChoices):
    SEV1 = "sev1", "SEV1 — platform down or data at risk"
    SEV2 = "sev2", "SEV2 — many customers affected"
    SEV3 = "sev3", "SEV3 — one customer affected"
    SEV4 = "sev4", "SEV4 — minor, no customer impact"

    @property
    def css_class(self) -> str:
        """The badge's classes (colours in cfadmin/static/cfadmin/cfadmin.css)."""
        return f"cf-severity cf-severity-{self.value}"

    @property
    def short_label(self) -> str:
        return self.value.upper()


class ResponseState(models.TextChoices):
    """How an incident's first response stands against its target."""

    MET = "met", "responded in time"
    MISSED = "missed", "responded late"
    OVERDUE = "overdue", "response overdue"
    PENDING = "pending", "awaiting response"

    @property
    def css_class(self) -> str:
        """The badge's classes (colours in cfadmin/static/cfadmin/cfadmin.css)."""
        return f"cf-response cf-response-{self.value}"


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

    def search(self, text: str) -> IncidentQuerySet:
        """Incidents found by every word of `text`: by id, a word of the title, or a linked
        stack or tenant as the stack search finds them (id, uuid, the beginning of a name, slug
        or domain). Each word is `pk IN (a UNION)` of the link tables read by their indexes:
        no join, no DISTINCT. When nothing is found so, any part of the summary or of a linked
        stack's name or domain."""
        found = self.filter(_incident_search_q(text, substring=False, using=self.db))
        if found.exists():
            return found
        return self.filter(_incident_search_q(text, substring=True, using=self.db))


# A public incident without a public title is shown so, never under its internal title.
UNTITLED_PUBLIC = "Service disruption"


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
    # The public status page (ops.status_page): only public incidents, under their public title,
    # with their public updates; internal notes and the title above never reach it.
    public = models.BooleanField(
        "shown on the status page", default=False, help_text="Customers see it on the status page."
    )
    public_title = models.CharField(
        max_length=200, blank=True, help_text="The title customers read (required when public)."
    )
    # Re-escalation (ops.notifications.paging): while nobody acknowledges, the next contact in
    # priority order is paged at this moment; cleared by acknowledging or resolving.
    next_page_at = models.DateTimeField(null=True, blank=True, db_index=True, editable=False)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def audit_scope(self) -> tuple[str, str]:
        """(tenant slug, stack name) for the incident's audit events, so filtering the trail by
        tenant or stack finds them. An incident may affect several: its first linked stack
        (lowest id) gives both; without a stack, its first linked tenant gives the tenant."""
        if self.pk is None:
            return "", ""
        stack = self.stacks.select_related("tenant").order_by("pk").first()
        if stack is not None:
            return stack.audit_scope()
        tenant = self.tenants.order_by("pk").first()
        return (tenant.slug if tenant is not None else ""), ""

    @property
    def public_name(self) -> str:
        """What customers call it (the status page, customer e-mails): its public title, never
        the internal one."""
        return self.public_title or UNTITLED_PUBLIC

    @property
    def severity_level(self) -> Severity:
        return Severity(self.severity)

    @property
    def is_resolved(self) -> bool:
        return self.status == IncidentStatus.RESOLVED

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
    # What the incident's response actions write (ops.response).
    AUTOMATIC = "automatic", "Opened automatically"
    CONTAINMENT = "containment", "Containment"
    EVIDENCE = "evidence", "Evidence"
    ROTATION = "rotation", "Key rotation"
    TRIAGE = "triage", "Triage"
    RECOVERY = "recovery", "Data recovery"
    POSTMORTEM = "postmortem", "Postmortem"
    # Telling people (issue 16).
    PAGED = "paged", "Re-escalated"
    PUBLIC_UPDATE = "public_update", "Public update"
    CUSTOMER_UPDATE = "customer_update", "Customer update"


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
        # An incident's page shows its latest events: read from this index, newest first.
        indexes = [models.Index(fields=["incident", "at"], name="ops_event_incident_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_kind_display()}: {self.message[:60]}"


def _incident_search_q(text: str, *, substring: bool, using: str) -> models.Q:
    from stacks.models.search import stack_ids

    # Incidents are few (thousands): the title is read through, the links by their indexes.
    incidents = Incident.objects.using(using).order_by()
    linked_stacks = Incident.stacks.through.objects.using(using).order_by()
    linked_tenants = Incident.tenants.through.objects.using(using).order_by()
    condition = models.Q()
    for term in search_terms(text):
        tenants = Tenant.objects.using(using).filter(prefix_q("slug", term.lower(), using=using))
        found = [
            incidents.filter(title__icontains=term).values("pk"),
            linked_stacks.filter(
                stack_id__in=stack_ids(term, substring=substring, using=using)
            ).values("incident_id"),
            linked_tenants.filter(tenant_id__in=tenants.values("pk")).values("incident_id"),
        ]
        if substring:
            found.append(incidents.filter(summary__icontains=term).values("pk"))
        if term.isdigit():
            found.append(incidents.filter(pk=int(term)).values("pk"))
        condition &= models.Q(pk__in=found[0].union(*found[1:]))
    return condition
