"""Checklist runs of a procedure and their items (one per step), with who settled what."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from cfadmin.index_search import prefix_q, search_terms
from ops.models.procedures import Procedure, ProcedureStep
from stacks.models import Operation, Stack
from tenants.models import Tenant


class RunStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"


class ChecklistRunQuerySet(models.QuerySet):
    def with_progress(self) -> ChecklistRunQuerySet:
        """Each run's settled and total item counts as `items_settled` / `items_total`, so a
        list shows progress without loading items (and their evidence). Correlated subqueries,
        not a join and GROUP BY: the database counts only the rows of the page shown."""
        items = ChecklistItem.objects.filter(run=OuterRef("pk")).order_by().values("run")
        counted = items.annotate(n=Count("pk")).values("n")
        settled = items.filter(state__in=SETTLED_STATES).annotate(n=Count("pk")).values("n")
        return self.annotate(
            items_total=Coalesce(Subquery(counted), 0),
            items_settled=Coalesce(Subquery(settled), 0),
        )

    def search(self, text: str) -> ChecklistRunQuerySet:
        """Runs found by every word of `text`: by id, a word of the procedure's title, their
        stack as the stack search finds it (id, uuid, the beginning of a name, slug or domain)
        or their tenant's slug (its beginning). Each word is `pk IN (a UNION)` of indexed
        lookups: no join, no DISTINCT. When nothing is found so, any part of the note or of
        the stack's name or domain."""
        found = self.filter(_run_search_q(text, substring=False, using=self.db))
        if found.exists():
            return found
        return self.filter(_run_search_q(text, substring=True, using=self.db))


def _run_search_q(text: str, *, substring: bool, using: str) -> Q:
    from stacks.models.search import stack_ids

    runs = ChecklistRun.objects.using(using).order_by()
    condition = Q()
    for term in search_terms(text):
        tenants = Tenant.objects.using(using).filter(prefix_q("slug", term.lower(), using=using))
        # Procedures are a handful: their titles are read through.
        procedures = Procedure.objects.using(using).filter(title__icontains=term)
        found = [
            runs.filter(stack_id__in=stack_ids(term, substring=substring, using=using)),
            runs.filter(tenant_id__in=tenants.values("pk")),
            runs.filter(procedure_id__in=procedures.values("pk")),
        ]
        if substring:
            found.append(runs.filter(note__icontains=term))
        if term.isdigit():
            found.append(runs.filter(pk=int(term)))
        ids = [lookup.values("pk") for lookup in found]
        condition &= Q(pk__in=ids[0].union(*ids[1:]))
    return condition


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
    # The deploy or delete whose success opened this validation run (ops.checklists.
    # open_validation_run); the run stays when the operation goes, as a run is a record.
    # Indexed (a ForeignKey is): the operation page finds its run by it.
    operation = models.ForeignKey(
        Operation,
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

    objects = ChecklistRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        # The runs list's order: its first page read from the index, not a sort of every run.
        indexes = [models.Index(fields=["started_at", "id"], name="ops_run_started")]

    def __str__(self) -> str:
        subject = (
            self.stack
            or self.tenant
            or (f"incident #{self.incident_id}" if self.incident_id else "")
        )
        return f"{self.procedure.title}{f' — {subject}' if subject else ''} #{self.pk}"

    def audit_scope(self) -> tuple[str, str]:
        """Its subject stack or tenant; a run about an incident only, the incident's."""
        if self.stack_id:
            return self.stack.audit_scope()
        if self.tenant_id:
            return self.tenant.slug, ""
        if self.incident_id:
            return self.incident.audit_scope()
        return "", ""

    @property
    def is_completed(self) -> bool:
        return self.status == RunStatus.COMPLETED

    @property
    def progress(self) -> tuple[int, int]:
        """(settled, total) items: from `with_progress()` or prefetched items when there,
        else one counting query (never the items themselves)."""
        if hasattr(self, "items_total"):
            return self.items_settled, self.items_total
        if "items" in getattr(self, "_prefetched_objects_cache", {}):
            items = list(self.items.all())
            return sum(item.is_settled for item in items), len(items)
        counts = self.items.aggregate(
            total=Count("pk"), settled=Count("pk", filter=Q(state__in=SETTLED_STATES))
        )
        return counts["settled"], counts["total"]


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
