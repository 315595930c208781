"""Checklist runs: start one for its subject (and queue its probes), settle its items (person or
probe), complete it. Each audits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from string import Formatter
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cfadmin import audit
from cfadmin.models import AuditAction
from ops import incidents
from ops.models import (
    ChecklistItem,
    ChecklistRun,
    Incident,
    IncidentEventKind,
    ItemState,
    Procedure,
    RunStatus,
)
from ops.notifications import events as notify
from ops.procedures import POST_DELETE, POST_DEPLOY
from stacks.choices import OperationKind
from stacks.models import Operation, Stack
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def active_procedure(slug: str) -> Procedure:
    return Procedure.objects.get(slug=slug, active=True)


def start_run(
    procedure: Procedure,
    *,
    actor: Any,
    tenant: Tenant | None = None,
    stack: Stack | None = None,
    incident: Incident | None = None,
    note: str = "",
) -> ChecklistRun:
    if stack is not None and tenant is None:
        tenant = stack.tenant
    with transaction.atomic():
        run = ChecklistRun.objects.create(
            procedure=procedure,
            tenant=tenant,
            stack=stack,
            incident=incident,
            note=note,
            started_by=actor if hasattr(actor, "pk") else None,
            started_by_repr=audit.actor_label(actor)[:150],
        )
        ChecklistItem.objects.bulk_create(
            ChecklistItem(run=run, step=step) for step in procedure.steps.all()
        )
        tenant_slug, stack_name = run.audit_scope()
        audit.record(
            actor=actor,
            action=AuditAction.CREATE,
            target=run,
            message=f"Started checklist: {procedure}",
            tenant_slug=tenant_slug,
            stack_name=stack_name,
        )
        if incident is not None:
            incidents.add_event(
                incident,
                IncidentEventKind.CHECKLIST,
                f"Started checklist “{procedure.title}” (run #{run.pk})",
                actor=actor,
            )
    return run


def start_run_for_incident(procedure: Procedure, incident: Incident, *, actor: Any) -> ChecklistRun:
    """A run inside an incident, about its one stack (or one tenant) when it has exactly one.
    Validation procedures check one stack, so the incident must name exactly one."""
    stacks = list(incident.stacks.select_related("tenant")[:2])
    tenants = list(incident.tenants.all()[:2])
    stack = stacks[0] if len(stacks) == 1 else None
    tenant = tenants[0] if len(tenants) == 1 and stack is None else None
    if procedure.needs_stack and stack is None:
        raise ValidationError(
            {
                "procedure": f"{procedure.title} checks one stack: link exactly one stack to "
                "the incident first, or start it from the procedure's page."
            }
        )
    return start_run(procedure, actor=actor, tenant=tenant, stack=stack, incident=incident)


def subject_for(
    procedure: Procedure, *, stack_ref: str = "", tenant_ref: str = ""
) -> tuple[Tenant | None, Stack | None]:
    """The tenant or stack a run is for, from what a person typed: "tenant/stack" or a tenant's
    slug. A stack that is not live or a tenant that does not exist is refused (field "stack" or
    "tenant"); so is no stack for a procedure that checks one (field "procedure")."""
    stack_ref, tenant_ref = (stack_ref or "").strip(), (tenant_ref or "").strip()
    tenant = stack = None
    if stack_ref:
        tenant_slug, _, stack_name = stack_ref.partition("/")
        stack = Stack.live_named(stack_name).filter(tenant__slug=tenant_slug).first()
        if stack is None:
            raise ValidationError({"stack": f"No live stack {stack_ref!r} (type tenant/stack)."})
    elif tenant_ref:
        tenant = Tenant.objects.filter(slug=tenant_ref).first()
        if tenant is None:
            raise ValidationError({"tenant": f"No tenant {tenant_ref!r}."})
    if stack is None and procedure.needs_stack:
        raise ValidationError(
            {"procedure": f"{procedure.title} checks one stack: give it as tenant/stack."}
        )
    return tenant, stack


def start_checklist(
    procedure: Procedure,
    *,
    actor: Any,
    stack_ref: str = "",
    tenant_ref: str = "",
    incident: Incident | None = None,
    enqueue: Callable[..., None] | None = None,
) -> ChecklistRun:
    """Start a run of `procedure` and queue its automatic checks, if it has any.

    Inside an incident the run is about the incident's one stack or tenant; otherwise about the
    stack or tenant typed (see `subject_for`). Bad input raises ValidationError naming the field,
    and nothing is written or queued."""
    from ops.probes import request_probes  # probes talk to remote services; import on use

    with transaction.atomic():
        if incident is not None:
            run = start_run_for_incident(procedure, incident, actor=actor)
        else:
            tenant, stack = subject_for(procedure, stack_ref=stack_ref, tenant_ref=tenant_ref)
            run = start_run(procedure, actor=actor, tenant=tenant, stack=stack)
        if procedure.has_probes():
            request_probes(run, actor=actor, enqueue=enqueue)  # a new run: none queued yet
    return run


def run_probes(run: ChecklistRun) -> int:
    """Run the automatic checks of the run's unsettled items; returns how many ran."""
    from ops.probes import run_probe  # probes talk to remote services; import on use

    ran = 0
    items = (
        run.items.select_related("step")
        .filter(state__in=[ItemState.PENDING, ItemState.FAILED])
        .exclude(step__probe="")
    )
    for item in items:
        passed, evidence = run_probe(item.step.probe, run)
        ran += 1
        evidence = {**evidence, "probe": item.step.probe, "checked_at": timezone.now().isoformat()}
        if passed is None:  # a person must look; keep the reason
            ChecklistItem.objects.filter(pk=item.pk).update(evidence=evidence)
            continue
        ChecklistItem.objects.filter(pk=item.pk).update(
            state=ItemState.PASSED if passed else ItemState.FAILED,
            evidence=evidence,
            settled_by=None,
            settled_by_repr="cfadmin probe",
            settled_at=timezone.now(),
        )
    _complete_if_settled(run, actor=None)
    if ran:
        notify.checklist_failed(run)  # a validation run with a failed check: once per run
    return ran


def settle_item(item: ChecklistItem, state: str, *, actor: Any, note: str = "") -> None:
    """A person ticks, skips or overrides an item. Skips and overrides need a reason."""
    note = note.strip()
    if item.run.status == RunStatus.COMPLETED:
        raise ValidationError("This checklist run is completed.")
    if state == ItemState.SKIPPED and not note:
        raise ValidationError({"note": "Say why you skip this step."})
    if item.state == ItemState.FAILED:
        if state != ItemState.OVERRIDDEN or not note:
            raise ValidationError(
                {"note": "The automatic check failed: override it only with a reason."}
            )
    elif state == ItemState.OVERRIDDEN:
        raise ValidationError("Only a failed automatic check can be overridden.")
    if state not in (ItemState.DONE, ItemState.SKIPPED, ItemState.OVERRIDDEN):
        raise ValidationError(f"Cannot set an item to {state}.")
    with transaction.atomic():
        ChecklistItem.objects.filter(pk=item.pk).update(
            state=state,
            note=note,
            settled_by=actor if hasattr(actor, "pk") else None,
            settled_by_repr=audit.actor_label(actor)[:150],
            settled_at=timezone.now(),
        )
        tenant_slug, stack_name = item.run.audit_scope()
        audit.record(
            actor=actor,
            action=AuditAction.UPDATE,
            target=item.run,
            message=f"{item.step.text}: {ItemState(state).label}" + (f" — {note}" if note else ""),
            tenant_slug=tenant_slug,
            stack_name=stack_name,
        )
        _complete_if_settled(item.run, actor=actor)


def _complete_if_settled(run: ChecklistRun, *, actor: Any) -> None:
    settled, total = ChecklistRun.objects.get(pk=run.pk).progress
    if total and settled == total:
        changed = ChecklistRun.objects.filter(pk=run.pk, status=RunStatus.OPEN).update(
            status=RunStatus.COMPLETED, completed_at=timezone.now()
        )
        if changed:
            tenant_slug, stack_name = run.audit_scope()
            audit.record(
                actor=actor,
                action=AuditAction.UPDATE,
                target=run,
                message="Checklist completed",
                tenant_slug=tenant_slug,
                stack_name=stack_name,
            )
            run = ChecklistRun.objects.select_related("procedure", "incident").get(pk=run.pk)
            if run.incident is not None:
                incidents.add_event(
                    run.incident,
                    IncidentEventKind.CHECKLIST,
                    f"Completed checklist “{run.procedure.title}” (run #{run.pk})",
                    actor=actor,
                )


# The validation procedure a successful operation of each kind opens (open_validation_run).
VALIDATION_PROCEDURES = {OperationKind.DEPLOY: POST_DEPLOY, OperationKind.DELETE: POST_DELETE}


def opens_validation_run(operation: Operation) -> bool:
    return operation.kind in VALIDATION_PROCEDURES


def open_validation_run(operation: Operation) -> ChecklistRun | None:
    """Hook run after a deploy or delete succeeds: open its validation run, linked to the
    operation (ChecklistRun.operation: the run's page and the stack and operation pages follow
    it), and probe it. The note says the same for people and the runs search."""
    slug = VALIDATION_PROCEDURES.get(operation.kind)
    if slug is None:
        return None
    with transaction.atomic():  # never a run without its operation
        run = start_run(
            active_procedure(slug), actor=None, stack=operation.stack, note=f"Opened by {operation}"
        )
        run.operation = operation
        run.save(update_fields=["operation"])
    run_probes(run)
    return run


class _Placeholders(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def command_placeholders(run: ChecklistRun) -> dict[str, str]:
    """The values a run's commands are filled with: worked out once for all of a run's steps
    (the stack's domain is a query)."""
    values = _Placeholders()
    if run.tenant_id:
        values["tenant"] = run.tenant.slug
    if run.stack_id:
        stack = run.stack
        # The same placeholder everywhere for a uuid the stack does not have yet.
        containers = stack.server_names(placeholder="{service_uuid}").containers
        values.update(
            stack=stack.stack_name,
            tenant=stack.tenant.slug,
            service_uuid=stack.coolify_service_uuid or "{service_uuid}",
            container=containers[0],
            containers=" ".join(containers),
        )
        domain = stack.domains.values_list("domain", flat=True).first()
        if domain:
            values["domain"] = domain
    return values


def command_for(command: str, run: ChecklistRun, placeholders: dict[str, str] | None = None) -> str:
    """The step's runbook command with the run's stack filled in ({stack}, {domain}…);
    `placeholders` from command_placeholders(run) when filling several."""
    values = _Placeholders(command_placeholders(run) if placeholders is None else placeholders)
    try:
        return Formatter().vformat(command, (), values)
    except (ValueError, IndexError):
        return command
