"""One comparison of cfadmin's records with Coolify and PocketBase, and its findings."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone


class ReconcileRun(models.Model):
    """One comparison of cfadmin with Coolify and PocketBase, and the drift it found."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by_repr = models.CharField("requested by", max_length=150)
    stacks_checked = models.PositiveIntegerField(default=0)
    drift = models.JSONField(default=list, blank=True)
    # An index of the drift, written with it: per kind its rows, the rows offering each repair
    # and where they are in the list (stacks.reconcile.stored_drift.count_rows). A report
    # counts from it and fetches only the rows it shows. Runs stored before it: built once,
    # on their first report.
    drift_counts = models.JSONField(null=True, blank=True, editable=False)
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
    def latest_finished(cls, *, without_drift: bool = False) -> ReconcileRun | None:
        """The report to act on: the newest comparison that ended (one may be running now);
        `without_drift` leaves its drift list in the database (a page reads it in parts)."""
        runs = cls.objects.filter(finished_at__isnull=False)
        return (runs.defer("drift") if without_drift else runs).first()

    @classmethod
    def latest_finished_id(cls) -> int | None:
        """latest_finished's id, without loading its drift (thousands of rows after a
        PocketBase reset)."""
        return cls.objects.filter(finished_at__isnull=False).values_list("pk", flat=True).first()

    @classmethod
    def with_drift_total(
        cls, queryset: models.QuerySet[ReconcileRun] | None = None
    ) -> models.QuerySet[ReconcileRun]:
        """Runs without their drift list, each with `drift_total` (a list of runs shows how
        many, not which): from the stored index (`drift_counts`), or for a run stored before
        it, counted by the database (the CASE keeps the database from reading the list of a
        run that has its index: 2.8 MB after a PocketBase reset)."""
        queryset = cls.objects.all() if queryset is None else queryset
        return queryset.defer("drift").annotate(
            drift_length=models.Case(
                models.When(drift_counts__isnull=True, then=JSONArrayLength("drift")),
                default=None,
                output_field=models.IntegerField(),
            )
        )

    @property
    def drift_total(self) -> int:
        """How many drift rows the run found, without loading them where it can."""
        if self.drift_counts is not None:
            return sum(entry[0] for entry in self.drift_counts.values())
        length = getattr(self, "drift_length", None)
        return len(self.drift or []) if length is None else length


class JSONArrayLength(models.Func):
    """The length of a JSON array column: json_array_length on SQLite, jsonb_array_length on
    PostgreSQL (a JSONField is jsonb there)."""

    function = "JSON_ARRAY_LENGTH"
    output_field = models.IntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, function="JSONB_ARRAY_LENGTH", **extra)
