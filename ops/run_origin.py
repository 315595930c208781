"""The operation that opened a validation run: ChecklistRun.operation, which
ops.checklists.open_validation_run sets (runs opened before it existed were linked from their
note by migration ops 0010). A run a person started has none, whatever its note says."""

from __future__ import annotations

from ops.models import ChecklistRun
from stacks.models import Operation


def opening_operation(run: ChecklistRun) -> Operation | None:
    """The deploy or delete whose success opened `run`, or None (at most one query; none when
    the run has no operation or it was loaded with select_related("operation"))."""
    return run.operation if run.operation_id else None
