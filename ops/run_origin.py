"""The operation that opened a validation run. ops.checklists.open_validation_run writes
"Opened by Deploy #12" in the run's note and keeps no link to it, so the operation is found by
the id in that note and must belong to the run's stack (a person's note that merely reads so
links nothing)."""

from __future__ import annotations

import re

from ops.models import ChecklistRun
from stacks.models import Operation

OPENED_BY = re.compile(r"^Opened by (?P<label>.+) #(?P<pk>\d+)$")


def opening_operation(run: ChecklistRun) -> Operation | None:
    """The deploy or delete whose success opened `run`, or None (one query when it may be)."""
    match = OPENED_BY.match(run.note.strip()) if run.stack_id else None
    if match is None:
        return None
    return Operation.objects.filter(pk=int(match["pk"]), stack_id=run.stack_id).first()
