"""The job that carries out an incident's leaked-value rotation: it queues the stacks'
ROTATE_SECRETS operations in paced batches and writes each batch and each finished rotation
on the timeline.

Pacing. Coolify 4.3.11 throttles its API per token user: the `api` middleware group runs
`ThrottleRequests::class.':api'` (app/Http/Kernel.php), `Limit::perMinute(config('api.rate_limit'))`
with API_RATE_LIMIT defaulting to 200 (config/api.php; stacks/clients/pacing.py has the detail,
and the simulator's FixedWindowLimiter follows it). A rotation costs about two calls (the env
bulk PATCH and the restart) plus its share of the status reads every worker shares. So at most
LEAK_ROTATIONS_PER_MINUTE (default 40: ~80 calls, under half the budget, leaving the rest to
health checks and other work) are queued per minute, and never more than that many in flight;
a 1,000-stack rotation is ~25 batches, never 1,000 tasks in the queue at once. Within a batch
the client's own pacer (stacks/clients/pacing.py) still keeps every call off 429.

Progress. Each pass is short and holds no worker: it notes the rotations that finished since
the last look (timeline) and queues the next batch once a minute has passed since the last
one. A pass runs when a rotation starts (the first batch at once) and then every minute from
the schedule `cfadmin.leak_rotations` (ops/schedules.py) while any rotation is waiting, in
flight or not yet noted — so a worker restart loses nothing, and 10,000 rotations never keep
a worker busy for hours.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from cfadmin import encryption
from ops.incidents import add_event
from ops.models import Incident, IncidentEventKind
from ops.models.leaks import LeakRotation, LeakState
from stacks.choices import OperationStatus
from stacks.services.operations import OperationRefused
from stacks.services.secrets import rotate_stack_secrets

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0  # Coolify's limit is per minute (Limit::perMinute)
BUSY_ATTEMPTS = 10  # windows a stack busy with another operation is tried again


def per_window() -> int:
    """How many rotations one minute may queue (and how many may be in flight)."""
    return max(1, int(getattr(settings, "LEAK_ROTATIONS_PER_MINUTE", 40)))


def _new_value(rotation: LeakRotation) -> dict[str, str]:
    value = encryption.decrypt(rotation.new_value_encrypted)
    return {key: value for key in rotation.keys}


QUEUED, BUSY, REFUSED = "queued", "busy", "refused"


def queue_one(rotation: LeakRotation, batch: int) -> str:
    """Queue this stack's rotation (store the new value, request ROTATE_SECRETS): QUEUED, BUSY
    (another operation is in flight on the stack: a later batch tries again), REFUSED (the
    stack cannot take it: the rotation failed, saying why) or "" (taken meanwhile)."""
    with transaction.atomic():
        row = (
            LeakRotation.objects.select_for_update(of=("self",))
            .select_related("stack__tenant", "created_by")
            .filter(pk=rotation.pk, operation__isnull=True, error="")
            .first()
        )
        if row is None:  # taken meanwhile
            return ""
        row.attempts += 1
        try:
            with transaction.atomic():
                operation = rotate_stack_secrets(
                    row.stack,
                    _new_value(row),
                    actor=row.created_by or row.created_by_repr or None,
                    parameters={"incident_id": row.incident_id, "leak_rotation": row.pk},
                )
        except (OperationRefused, ValidationError) as refused:
            busy = getattr(refused, "code", "") == "operation_in_flight"
            if busy and row.attempts < BUSY_ATTEMPTS:
                row.save(update_fields=["attempts"])
                return BUSY
            # Messages name stacks and keys, never values (cfadmin.validators).
            row.error = " ".join(getattr(refused, "messages", [str(refused)]))
            row.new_value_encrypted = ""
            row.save(update_fields=["attempts", "error", "new_value_encrypted"])
            return REFUSED
        row.operation = operation
        row.batch = batch
        row.new_value_encrypted = ""  # now on the stack's secret, encrypted there
        row.save(update_fields=["attempts", "operation", "batch", "new_value_encrypted"])
        return QUEUED


def queue_batch(incident: Incident) -> int:
    """Queue the next batch: up to per_window() rotations, fewer while some are in flight.
    Writes one timeline line for the batch. Returns how many it tried (0: no room yet)."""
    rotations = LeakRotation.objects.filter(incident=incident)
    room = per_window() - rotations.in_flight().count()
    if room <= 0:
        return 0
    batch = (rotations.aggregate(last=Max("batch"))["last"] or 0) + 1
    queued = refused = 0
    tried = list(rotations.waiting().order_by("attempts", "id")[:room])
    for rotation in tried:
        state = queue_one(rotation, batch)
        queued += state == QUEUED
        refused += state == REFUSED
    if queued or refused:
        left = rotations.waiting().count()
        message = f"Rotation batch {batch}: {queued} stack(s) queued"
        if refused:
            message += f", {refused} refused (see the Leaked value panel)"
        message += f"; {left} waiting." if left else "; none left waiting."
        add_event(incident, IncidentEventKind.ROTATION, message, actor=None)
    return len(tried)


def note_finished(incident: Incident) -> int:
    """A timeline line for each rotation that finished (or was refused) since the last look."""
    finished = (
        LeakRotation.objects.filter(incident=incident, noted_at__isnull=True)
        .exclude(operation__isnull=True, error="")
        .exclude(operation__status__in=(OperationStatus.QUEUED, OperationStatus.RUNNING), error="")
        .select_related("stack__tenant", "operation")
    )
    noted = 0
    for rotation in finished:
        with transaction.atomic():
            if not LeakRotation.objects.filter(pk=rotation.pk, noted_at__isnull=True).update(
                noted_at=timezone.now()
            ):
                continue  # another look noted it
            add_event(incident, IncidentEventKind.ROTATION, outcome_line(rotation), actor=None)
            noted += 1
    return noted


def outcome_line(rotation: LeakRotation) -> str:
    """The timeline's line for a finished rotation (keys and names, never values)."""
    where = f"{rotation.stack.tenant.slug}/{rotation.stack.stack_name} ({rotation.key})"
    if rotation.state == LeakState.SUCCEEDED:
        return f"Rotated {where}: new value pushed to Coolify and the stack restarted."
    reason = rotation.error or (rotation.operation.error if rotation.operation else "")
    return f"Rotation failed on {where}: {reason or 'see its operation'}."


def last_batch_at(incident: Incident) -> datetime | None:
    """When the incident's latest batch was queued (its newest rotation operation)."""
    return (
        LeakRotation.objects.filter(incident=incident)
        .exclude(operation=None)
        .aggregate(last=Max("operation__requested_at"))["last"]
    )


def advance(incident_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """One pass over an incident's rotation: note what finished, queue the next batch when
    the last one is a minute old, note again. Returns the counts by state."""
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return {"incident": incident_id, "missing": True}
    now = now or timezone.now()
    with transaction.atomic():
        # One pass at a time per incident (the start's pass and the schedule's may meet): the
        # second sees the first's batch and waits for the next minute.
        Incident.objects.select_for_update().filter(pk=incident.pk).first()
        return _advance(incident, now)


def _advance(incident: Incident, now: datetime) -> dict[str, Any]:
    note_finished(incident)
    last = last_batch_at(incident)
    window_passed = last is None or now - last >= timedelta(seconds=WINDOW_SECONDS)
    rotations = LeakRotation.objects.filter(incident=incident)
    if window_passed and rotations.waiting().exists():
        queue_batch(incident)
        note_finished(incident)
    return {"incident": incident.pk, **summary(incident)}


def unfinished_incidents() -> list[int]:
    """Incidents with a rotation waiting, in flight or finished but not yet on the timeline."""
    open_rows = LeakRotation.objects.filter(noted_at__isnull=True)
    return sorted(set(open_rows.values_list("incident_id", flat=True)))


def advance_all_task() -> dict[str, Any]:
    """The per-minute schedule: one pass over every incident whose rotation is not done."""
    passes = [advance(incident_id) for incident_id in unfinished_incidents()]
    return {"incidents": len(passes)}


def summary(incident: Incident) -> dict[str, int]:
    """How many of the incident's rotations are in each LeakState."""
    counts = dict.fromkeys(LeakState.values, 0)
    grouped = (
        LeakRotation.objects.filter(incident=incident)
        .with_state()
        .order_by()
        .values_list("state_value")
        .annotate(n=Count("pk"))
    )
    counts.update(dict(grouped))
    return counts


def advance_task(incident_id: int) -> dict[str, Any]:
    """Queue entry point (cfadmin.jobs.enqueue): a pass right when a rotation starts."""
    return advance(incident_id)
