"""Mass-failure triage actions: the emergency stop in the runbook's order and the gradual
restart in waves. Each wave's start operations are requested only once the wave before it is
healthy (all its operations succeeded and its stacks run); a failed wave halts the restart.
Waves advance in a job (advance_task, queued when a restart is planned, and the schedule
ops.schedules runs every minute), never in a request."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cfadmin import audit, jobs
from ops import incidents
from ops.models import Incident, IncidentEventKind
from ops.models.mass_failure import MassFailure, RestartWave, WaveStatus
from ops.response.mass_failure_order import memory_text, restart_order, stop_order
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation, Stack
from stacks.services.operations import request_operations

JOB_ACTOR = "cfadmin"  # the job's own timeline lines (the operations keep their requester)
ADVANCE_TASK = "ops.response.mass_failure_waves.advance_task"
MAX_WAVE_SIZE = 50
OPEN_WAVES = (WaveStatus.PENDING, WaveStatus.RUNNING)
RESTARTABLE = (StackStatus.STOPPED, StackStatus.ERROR)


def mass_failure_of(incident: Incident) -> MassFailure:
    mass = MassFailure.objects.filter(incident=incident).first()
    if mass is None:
        raise ValidationError("This incident is not about a mass failure.")
    return mass


def _triage_line(incident: Incident, message: str, *, actor: Any) -> None:
    """A TRIAGE line on the timeline and its audit event."""
    incidents.log_action(
        incident, IncidentEventKind.TRIAGE, message, actor=actor, audit_message=f"Triage: {message}"
    )


def _parameters(incident: Incident, step: str) -> dict[str, Any]:
    return {"incident_id": incident.pk, "triage": step}


def stoppable(mass: MassFailure) -> list[Stack]:
    """The mass failure's stacks a stop still applies to, in the runbook's order."""
    stacks = mass.stacks.select_related("tenant")
    return [s for s in stop_order(stacks) if s.accepts(OperationKind.STOP) and not s.containment]


def stop_in_order(
    incident: Incident, *, actor: Any, count: int | None = None
) -> tuple[list[Operation], list[tuple[Stack, str]]]:
    """Queue a stop of the mass failure's stacks, highest memory limits first (the runbook's
    emergency stop: base-llm first); `count` stops only the first so many."""
    mass = mass_failure_of(incident)
    stacks = stoppable(mass)
    if count is not None:
        if count < 1:
            raise ValidationError({"count": "Stop at least one stack, or leave it empty for all."})
        stacks = stacks[:count]
    if not stacks:
        raise ValidationError("No stack of this mass failure is left to stop.")
    with transaction.atomic():
        queued, skipped = request_operations(
            stacks, OperationKind.STOP, actor=actor, parameters=_parameters(incident, "stop")
        )
        order = ", ".join(
            f"{s} ({s.template_name}, {memory_text(s.template_name)})" for s in stacks
        )
        message = f"Emergency stop, highest resource limits first: {order}. {len(queued)} queued"
        if skipped:
            message += "; not stopped: " + "; ".join(f"{s}: {why}" for s, why in skipped)
        _triage_line(incident, message + ".", actor=actor)
    return queued, skipped


def restartable(mass: MassFailure) -> list[Stack]:
    """The stacks a gradual restart brings back (stopped or in error, not isolated), lightest
    first."""
    stacks = mass.stacks.select_related("tenant").filter(status__in=RESTARTABLE)
    return [s for s in restart_order(stacks) if not s.containment]


def plan_restart(incident: Incident, *, actor: Any, wave_size: int) -> list[RestartWave]:
    """Plan the gradual restart in waves of `wave_size` stacks; the first starts at once (in
    the job queued here), each next one after the previous is healthy."""
    if not 1 <= wave_size <= MAX_WAVE_SIZE:
        raise ValidationError({"wave_size": f"Choose a wave size from 1 to {MAX_WAVE_SIZE}."})
    mass = mass_failure_of(incident)
    with transaction.atomic():
        MassFailure.objects.select_for_update().filter(pk=mass.pk).first()
        if mass.waves.filter(status__in=OPEN_WAVES).exists():
            raise ValidationError("A restart is under way already: wait for it or its failure.")
        stacks = restartable(mass)
        if not stacks:
            raise ValidationError("No stack of this mass failure is stopped: nothing to restart.")
        first = (mass.waves.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        waves, parts = [], []
        for index in range(0, len(stacks), wave_size):
            members = stacks[index : index + wave_size]
            wave = RestartWave.objects.create(
                mass_failure=mass,
                number=first + index // wave_size,
                requested_by=actor if hasattr(actor, "pk") else None,
                requested_by_repr=audit.actor_label(actor)[:150],
            )
            wave.stacks.add(*members)
            waves.append(wave)
            parts.append(f"wave {wave.number}: {', '.join(str(s) for s in members)}")
        plan = "; ".join(parts)
        _triage_line(
            incident,
            f"Gradual restart planned in {len(waves)} waves of up to {wave_size}, lightest "
            f"stacks first, each after the previous is healthy — {plan}.",
            actor=actor,
        )
        jobs.enqueue(ADVANCE_TASK, mass.pk)
    return waves


# --- the job ---------------------------------------------------------------------------------


def wave_health(wave: RestartWave) -> tuple[str, str]:
    """(status, why) of a running wave: succeeded when every operation succeeded and every
    stack runs; failed when an operation failed or was cancelled, or a started stack does not
    run; running while operations are in flight."""
    operations = list(wave.operations.select_related("stack__tenant"))
    bad = [
        op for op in operations if op.status in (OperationStatus.FAILED, OperationStatus.CANCELLED)
    ]
    if bad:
        return WaveStatus.FAILED, "; ".join(
            f"{op.stack}: {op.get_kind_display().lower()} {op.get_status_display().lower()}"
            + (f" ({op.error[:200]})" if op.error else "")
            for op in bad
        )
    if any(op.status != OperationStatus.SUCCEEDED for op in operations):
        return WaveStatus.RUNNING, ""
    not_running = [
        s for s in wave.stacks.select_related("tenant") if s.status != StackStatus.RUNNING
    ]
    if not_running:
        return WaveStatus.FAILED, "started but not running: " + ", ".join(
            f"{s} ({s.get_status_display().lower()})" for s in not_running
        )
    return WaveStatus.SUCCEEDED, ""


def _start_wave(wave: RestartWave, incident: Incident) -> None:
    """Request the wave's start operations (claimed first: two jobs never start it twice)."""
    claimed = RestartWave.objects.filter(pk=wave.pk, status=WaveStatus.PENDING).update(
        status=WaveStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    actor = wave.requested_by or wave.requested_by_repr or None
    stacks = list(wave.stacks.select_related("tenant"))
    to_start = [s for s in stacks if s.status != StackStatus.RUNNING]
    queued, skipped = request_operations(
        to_start, OperationKind.START, actor=actor, parameters=_parameters(incident, "restart")
    )
    wave.operations.add(*queued)
    message = (
        f"Restart wave {wave.number} started (planned by {wave.requested_by_repr}): "
        f"{', '.join(str(s) for s in stacks)}"
    )
    if skipped:
        message += "; could not start: " + "; ".join(f"{s}: {why}" for s, why in skipped)
    _triage_line(incident, message + ".", actor=JOB_ACTOR)
    if skipped:
        _finish_wave(
            wave,
            incident,
            WaveStatus.FAILED,
            "could not start " + ", ".join(str(s) for s, _ in skipped),
        )


def _finish_wave(wave: RestartWave, incident: Incident, status: str, why: str) -> None:
    done = RestartWave.objects.filter(pk=wave.pk, status=WaveStatus.RUNNING).update(
        status=status, message=why, finished_at=timezone.now()
    )
    if not done:
        return
    if status == WaveStatus.SUCCEEDED:
        _triage_line(
            incident, f"Restart wave {wave.number} is healthy: its stacks run.", actor=JOB_ACTOR
        )
        return
    halted = RestartWave.objects.filter(
        mass_failure=wave.mass_failure_id, status=WaveStatus.PENDING
    ).update(status=WaveStatus.HALTED, finished_at=timezone.now())
    _triage_line(
        incident,
        f"Restart wave {wave.number} failed — {why}. The restart is halted"
        + (f" ({halted} later waves not started)" if halted else "")
        + ": fix the cause, then plan a new restart.",
        actor=JOB_ACTOR,
    )


def advance(mass_failure_id: int) -> None:
    """Move the mass failure's restart on: finish the running wave when it is healthy (or
    failed), then start the next one. Safe to run twice at once (conditional updates)."""
    mass = MassFailure.objects.select_related("incident").filter(pk=mass_failure_id).first()
    if mass is None:
        return
    while True:
        wave = mass.waves.filter(status__in=OPEN_WAVES).order_by("number").first()
        if wave is None:
            return
        with transaction.atomic():
            if wave.status == WaveStatus.PENDING:
                _start_wave(wave, mass.incident)
                return  # its operations are queued: the next run sees how they did
            status, why = wave_health(wave)
            if status == WaveStatus.RUNNING:
                return
            _finish_wave(wave, mass.incident, status, why)
            if status == WaveStatus.FAILED:
                return


def advance_task(mass_failure_id: int) -> None:
    """Queue entry point (jobs.enqueue): advance one mass failure's restart."""
    advance(mass_failure_id)


def advance_all_task() -> None:
    """The schedule's entry point: advance every restart under way."""
    ids = RestartWave.objects.filter(status__in=OPEN_WAVES).values_list(
        "mass_failure_id", flat=True
    )
    for mass_failure_id in sorted(set(ids)):
        advance(mass_failure_id)
