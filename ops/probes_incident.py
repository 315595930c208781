"""Automatic checks of the emergency and security procedures' items that the incident actions
cover (issue 15): each verifies an action's outcome on the run's incident, or its stacks.

Each returns (passed, evidence) like ops.probes: True when the outcome is there, False when it
is not (yet: the item is checked again when the run's checks run again), None when a machine
cannot tell (the run is not inside an incident, it has no stack, or that part of cfadmin is not
installed) — the evidence then says why and a person looks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist

from stacks.choices import StackStatus

if TYPE_CHECKING:
    from ops.models import ChecklistRun, Incident

ProbeResult = tuple[bool | None, dict[str, Any]]

# Stack states in which none of its containers runs.
NOT_RUNNING = (StackStatus.STOPPED, StackStatus.DELETED)
# How many stacks or items the evidence names (the rest are counted).
SHOWN = 20


class CannotTell(LookupError):
    """Why a machine cannot answer (ops.probes.run_probe turns a LookupError into None)."""


def _incident(run: ChecklistRun) -> Incident:
    if run.incident_id is None:
        raise CannotTell("this checklist run is not inside an incident")
    return run.incident


def _stacks(run: ChecklistRun) -> list[Any]:
    """The run's stack, or else every stack linked to its incident."""
    if run.stack_id is not None:
        return [run.stack]
    stacks = list(_incident(run).stacks.select_related("tenant").order_by("pk"))
    if not stacks:
        raise CannotTell("no stack is linked to the incident")
    return stacks


def _has_field(model: Any, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def _related_rows(incident: Incident, accessor: str, field: str, part: str) -> Any:
    """The incident's rows of another part's model (contracts.md), or CannotTell when that part
    has not landed (no such relation, or its model lacks the field)."""
    manager = getattr(incident, accessor, None)
    if manager is None or not _has_field(manager.model, field):
        raise CannotTell(f"cfadmin cannot read {part} here (that part is not installed)")
    return manager.all()


def _evidence_items(incident: Incident) -> list[Any]:
    """The incident's first evidence items (ops.models.evidence.EvidenceItem)."""
    rows = _related_rows(incident, "evidence", "sha256", "evidence")
    return list(rows.order_by("pk")[: SHOWN + 1])


def _rotations(incident: Incident) -> list[Any]:
    """The incident's key rotations (ops.models.leaks.LeakRotation), each with its `state`."""
    rows = _related_rows(incident, "leak_rotations", "key", "key rotations")
    return list(rows.select_related("stack__tenant").order_by("pk"))


def _named(rows: list[Any], label: Any) -> list[str]:
    named = [label(row) for row in rows[:SHOWN]]
    if len(rows) > SHOWN:
        named.append(f"… and {len(rows) - SHOWN} more")
    return named


# --- the probes --------------------------------------------------------------------------------


def evidence_captured(run: ChecklistRun) -> ProbeResult:
    """At least one evidence item is stored on the incident (ops.models.evidence)."""
    items = _evidence_items(_incident(run))
    if not items:
        return False, {"error": "no evidence captured on this incident yet: capture it first"}
    return True, {
        "items": _named(items, lambda item: f"{item.title} sha256:{item.sha256}"),
    }


def stacks_isolated(run: ChecklistRun) -> ProbeResult:
    """Every stack of the run (or the incident) is isolated (Stack.containment)."""
    stacks = _stacks(run)
    if not _has_field(stacks[0], "containment"):
        raise CannotTell("cfadmin cannot isolate stacks here (containment is not installed)")
    waiting = [stack for stack in stacks if stack.containment != "isolated"]
    evidence = {"stacks": _named(stacks, lambda s: f"{s}: {s.containment or 'not contained'}")}
    if waiting:
        return False, {**evidence, "error": f"{len(waiting)} of {len(stacks)} not isolated"}
    return True, evidence


def stacks_stopped(run: ChecklistRun) -> ProbeResult:
    """No container of the run's stacks (or the incident's) runs: stopped (isolating stops)
    or deleted."""
    stacks = _stacks(run)
    running = [stack for stack in stacks if stack.status not in NOT_RUNNING]
    evidence = {"stacks": _named(stacks, lambda s: f"{s}: {s.status}")}
    if running:
        return False, {**evidence, "error": f"{len(running)} of {len(stacks)} not stopped"}
    return True, evidence


def keys_rotated(run: ChecklistRun) -> ProbeResult:
    """Every rotation of the exposed value requested from the incident succeeded (which also
    redeployed each stack with its new key)."""
    rotations = _rotations(_incident(run))
    if not rotations:
        return False, {"error": "no rotation was requested from this incident yet"}
    states: dict[str, int] = {}
    for rotation in rotations:
        states[rotation.state] = states.get(rotation.state, 0) + 1
    evidence = {
        "states": states,
        "rotations": _named(rotations, lambda r: f"{r.stack} {r.key}: {r.state}"),
    }
    if states.get("succeeded", 0) != len(rotations):
        return False, {**evidence, "error": "not every rotation succeeded"}
    return True, evidence


def pattern_identified(run: ChecklistRun) -> ProbeResult:
    """The incident holds a mass-failure pattern (ops.models.mass_failure)."""
    incident = _incident(run)
    relation = getattr(type(incident), "mass_failure", None)
    if relation is None or not _has_field(relation.related.related_model, "pattern"):
        raise CannotTell("cfadmin cannot group failures here (mass failure is not installed)")
    try:
        found = incident.mass_failure
    except ObjectDoesNotExist:
        return False, {"error": "no mass-failure pattern on this incident"}
    return True, {
        "detected_at": found.detected_at.isoformat() if found.detected_at else "",
        "pattern": found.pattern,
    }


def volume_exists(run: ChecklistRun) -> ProbeResult:
    """The stack's volumes still exist, as Coolify reports them (stacks.services.recovery)."""
    try:
        from stacks.services.recovery import volumes_exist
    except ImportError:
        raise CannotTell(
            "cfadmin cannot ask about volumes here (recovery is not installed)"
        ) from None
    answers: dict[str, Any] = {}
    verdicts: list[bool | None] = []
    for stack in _stacks(run)[:SHOWN]:
        exists, facts = volumes_exist(stack)
        verdicts.append(exists)
        answers[str(stack)] = {"exists": exists, **facts}
    if False in verdicts:
        return False, answers
    if None in verdicts:
        return None, answers
    return True, answers


# --- checked again when an incident action's operation succeeds --------------------------------


def recheck_after_operation(operation: Any) -> int:
    """An OPERATION_SUCCESS_HOOKS hook: when an operation requested from an incident (stop,
    isolate, rotation — parameters["incident_id"]) succeeds, queue the automatic checks of the
    incident's open runs that still have an unverified automatic item, so their items follow the
    action's outcome. Returns how many runs were queued (one already queued is left alone)."""
    from cfadmin.queued_once import AlreadyQueued
    from ops.models import ChecklistItem, ChecklistRun, ItemState, RunStatus
    from ops.probes import request_probes

    incident_id = (operation.parameters or {}).get("incident_id")
    if not isinstance(incident_id, int):
        return 0
    unverified = ChecklistItem.objects.filter(
        run__incident_id=incident_id,
        run__status=RunStatus.OPEN,
        state__in=[ItemState.PENDING, ItemState.FAILED],
    ).exclude(step__probe="")
    queued = 0
    for run in ChecklistRun.objects.filter(pk__in=unverified.values("run_id")).order_by("pk"):
        try:
            request_probes(run, actor=None)
        except AlreadyQueued:
            continue
        queued += 1
    return queued
