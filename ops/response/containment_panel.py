"""The incident page's "Contain" panel: each linked stack with its status, its containment, the
latest containment operation's progress, and — for isolated stacks — the network commands to
run on the server, which Coolify's API cannot do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count
from django.http import HttpRequest
from django.urls import reverse

from ops import response
from ops.models import Incident
from ops.response import Panel
from stacks.choices import Containment, OperationKind, StackStatus
from stacks.models import Operation, Stack
from stacks.provisioning.containment_steps import network_disconnect_commands

CONTAINMENT_KINDS = (OperationKind.STOP, OperationKind.ISOLATE, OperationKind.RELEASE)


@dataclass(frozen=True)
class ContainedRow:
    stack: Stack
    url: str
    status_class: str
    containment_label: str
    containment_class: str
    operation: Operation | None
    step_count: int
    commands: list[str]


def linked_stacks(incident: Incident) -> list[Stack]:
    """The incident's live linked stacks, by name (read once per page)."""
    return [stack for stack in response.linked_stacks(incident) if stack.is_live]


def latest_operations(incident: Incident, stacks: list[Stack]) -> dict[int, Operation]:
    """Each stack's latest stop, isolate or release, in one query (none when no linked stack
    ever had one)."""
    latest: dict[int, Operation] = {}
    if not response.present(incident, "containment"):
        return latest
    rows = (
        Operation.objects.latest_of_stacks([s.pk for s in stacks], kinds=CONTAINMENT_KINDS)
        .annotate(step_total=Count("steps"))
        .defer("result", "parameters")
    )
    for operation in rows:
        latest.setdefault(operation.stack_id, operation)
    return latest


def rows(incident: Incident) -> list[ContainedRow]:
    stacks = linked_stacks(incident)
    operations = latest_operations(incident, stacks)
    found = []
    for stack in stacks:
        operation = operations.get(stack.pk)
        containment = Containment(stack.containment)
        found.append(
            ContainedRow(
                stack=stack,
                url=reverse("admin:stacks_stack_change", args=[stack.pk]),
                status_class=StackStatus(stack.status).badge_class,
                containment_label=containment.label,
                containment_class=containment.badge_class,
                operation=operation,
                step_count=operation.step_total if operation is not None else 0,
                commands=network_disconnect_commands(stack) if stack.is_isolated else [],
            )
        )
    return found


def panel(incident: Incident, request: HttpRequest) -> Panel | None:
    found = rows(incident)
    if not found:
        return None
    context: dict[str, Any] = {
        "rows": found,
        "isolated": sum(1 for row in found if row.stack.is_isolated),
        "any_commands": any(row.commands for row in found),
    }
    return Panel("containment", "admin/ops/incident/panel_containment.html", context, order=10)
