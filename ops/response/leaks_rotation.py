"""Rotating a leaked value everywhere (issue 15): which stacks hold it, and starting their
rotation from an incident — one LeakRotation per stack, the new value kept encrypted until its
batch is queued (ops.response.leaks_jobs)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from cfadmin import audit, encryption, jobs
from cfadmin.models import AuditAction
from cfadmin.validators import validate_env_value
from ops.incidents import log_action
from ops.models import Incident, IncidentEventKind
from ops.models.leaks import LeakRotation
from stacks.models import Stack
from stacks.services.secrets import stacks_holding
from tenants.models import Tenant

ADVANCE_TASK = "ops.response.leaks_jobs.advance_task"


@dataclass(frozen=True)
class Holding:
    """A stack that holds the leaked value, under these keys."""

    stack: Stack
    keys: tuple[str, ...]

    @property
    def tenant(self) -> Tenant:
        return self.stack.tenant


@sensitive_variables("exposed")
def holdings(exposed: str) -> list[Holding]:
    """The live stacks whose stored secret equals `exposed`, one per stack (tenant, name order)."""
    by_stack: dict[int, tuple[Stack, list[str]]] = {}
    for stack, key in stacks_holding(exposed):
        by_stack.setdefault(stack.pk, (stack, []))[1].append(key)
    return [Holding(stack, tuple(keys)) for stack, keys in by_stack.values()]


def tenants_of(found: list[Holding]) -> list[Tenant]:
    """The tenants of the holdings, each once, in order."""
    seen: dict[int, Tenant] = {}
    for holding in found:
        seen.setdefault(holding.tenant.pk, holding.tenant)
    return list(seen.values())


def underway(incident: Incident) -> bool:
    """Whether a rotation of this incident is still waiting or running."""
    rotations = LeakRotation.objects.filter(incident=incident)
    return rotations.waiting().exists() or rotations.in_flight().exists()


def refusal(incident: Incident) -> str:
    """Why no rotation can start on this incident now ("" when one can)."""
    if incident.is_resolved:
        return "The incident is resolved: reopen it to rotate a value."
    if underway(incident):
        return (
            "A rotation of this incident is still under way: wait until its stacks have "
            "finished (the Leaked value panel shows them)."
        )
    return ""


@sensitive_variables("exposed", "default", "per_tenant", "values", "value")
def new_values_by_tenant(
    exposed: str, found: list[Holding], default: str, per_tenant: Mapping[int, str]
) -> dict[int, str]:
    """Each tenant's new value: its own if given, else the one for all. Raises ValidationError
    (never naming a value) when one is missing, invalid or the exposed value again."""
    values: dict[int, str] = {}
    errors: list[str] = []
    for tenant in tenants_of(found):
        value = per_tenant.get(tenant.pk) or default
        if not value:
            errors.append(f"Enter a new value for all tenants, or one for {tenant.slug}.")
            continue
        try:
            validate_env_value(value)
        except ValidationError as error:
            errors.append(f"{tenant.slug}: {' '.join(error.messages)}")
            continue
        if hmac.compare_digest(value.encode("utf-8"), exposed.encode("utf-8")):
            errors.append(f"{tenant.slug}: the new value is the exposed one; enter a fresh one.")
            continue
        values[tenant.pk] = value
    if errors:
        raise ValidationError(errors)
    return values


@sensitive_variables("exposed", "default", "per_tenant", "values")
def start_rotation(
    incident: Incident,
    exposed: str,
    *,
    default: str = "",
    per_tenant: Mapping[int, str] | None = None,
    actor: Any,
) -> list[LeakRotation]:
    """One LeakRotation per stack holding `exposed`, its new value encrypted; a timeline line,
    an audit event and the job that queues them in paced batches. Nothing is stored in clear."""
    problem = refusal(incident)
    if problem:
        raise ValidationError(problem)
    found = holdings(exposed)
    if not found:
        raise ValidationError("No live stack holds this value: nothing to rotate.")
    values = new_values_by_tenant(exposed, found, default, per_tenant or {})
    label = audit.actor_label(actor)[:150]
    with transaction.atomic():
        # Two submits at once (a double click) start one rotation: the second waits for the
        # first's commit here and is then refused as "still under way".
        Incident.objects.select_for_update().filter(pk=incident.pk).first()
        problem = refusal(incident)
        if problem:
            raise ValidationError(problem)
        # What the incident touches: the stacks holding the value and their tenants (the
        # evidence form and containment offer the incident's linked stacks).
        incident.stacks.add(*(holding.stack for holding in found))
        incident.tenants.add(*{holding.stack.tenant_id for holding in found})
        rotations = LeakRotation.objects.bulk_create(
            LeakRotation(
                incident=incident,
                stack=holding.stack,
                key=",".join(holding.keys),
                new_value_encrypted=encryption.encrypt(values[holding.tenant.pk]),
                created_by=actor if hasattr(actor, "pk") else None,
                created_by_repr=label,
            )
            for holding in found
        )
        keys = sorted({key for holding in found for key in holding.keys})
        tenants = tenants_of(found)
        message = (
            f"Rotation of a leaked value started: {len(found)} stack(s) of {len(tenants)} "
            f"tenant(s) hold it ({', '.join(keys)}); queued in paced batches."
        )
        log_action(
            incident,
            IncidentEventKind.ROTATION,
            message,
            actor=actor,
            action=AuditAction.OPERATION,
            changes={
                "stacks": [f"{h.tenant.slug}/{h.stack.stack_name}" for h in found],
                "keys": keys,
                "new_value": "one per tenant" if per_tenant else "one for all",
            },
        )
        jobs.enqueue(ADVANCE_TASK, incident.pk, task_name=f"leak-rotation-{incident.pk}")
    return rotations


def resume(incident: Incident, *, actor: Any) -> None:
    """Queue the rotation job again for rotations still waiting (after a worker restart)."""
    if not LeakRotation.objects.filter(incident=incident).waiting().exists():
        raise ValidationError("No rotation of this incident is waiting.")
    with transaction.atomic():
        log_action(
            incident,
            IncidentEventKind.ROTATION,
            "Rotation job queued again.",
            actor=actor,
            action=AuditAction.OPERATION,
            audit_message="Leaked value rotation resumed",
        )
        jobs.enqueue(ADVANCE_TASK, incident.pk, task_name=f"leak-rotation-{incident.pk}")
