"""The Triage panel of a mass-failure incident: the pattern (groups by template, tenant, server
and first-seen minute), the stacks in the runbook's stop order with their status and latest
operation, and the restart's waves with their progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch
from django.http import HttpRequest
from django.urls import reverse

from ops import response
from ops.models import Incident
from ops.models.mass_failure import MassFailure, RestartWave, WaveStatus
from ops.response import Panel
from ops.response.mass_failure_detect import PATTERN_KEYS
from ops.response.mass_failure_order import memory_text, stop_order
from stacks.choices import StackStatus
from stacks.models import Operation, Stack


@dataclass(frozen=True)
class StackRow:
    position: int
    stack: Stack
    memory: str
    status_class: str
    operation: Operation | None
    url: str


@dataclass(frozen=True)
class WaveRow:
    wave: RestartWave
    stacks: list[Stack]
    operations: list[Operation]


ROWS_SHOWN = 100  # of the stop order on the live panel (a mass failure may link thousands)


def stack_rows(mass: MassFailure) -> list[StackRow]:
    """The first ROWS_SHOWN stacks in stop order, each with its latest operation."""
    stacks = stop_order(mass.stacks.select_related("tenant"))[:ROWS_SHOWN]
    shown = Operation.objects.latest_of_stacks([stack.pk for stack in stacks])
    latest = {operation.stack_id: operation for operation in shown.defer("result", "parameters")}
    return [
        StackRow(
            position=index,
            stack=stack,
            memory=memory_text(stack.template_name),
            status_class=StackStatus(stack.status).badge_class,
            operation=latest.get(stack.pk),
            url=reverse("admin:stacks_stack_change", args=[stack.pk]),
        )
        for index, stack in enumerate(stacks, start=1)
    ]


def wave_rows(mass: MassFailure) -> list[WaveRow]:
    """Every wave with its stacks and operations, in three queries however many waves."""
    waves = mass.waves.order_by("number").prefetch_related(
        Prefetch("stacks", queryset=Stack.objects.select_related("tenant").order_by("pk")),
        Prefetch(
            "operations",
            queryset=Operation.objects.select_related("stack__tenant")
            .defer("result", "parameters")
            .order_by("pk"),
        ),
    )
    return [
        WaveRow(wave=wave, stacks=list(wave.stacks.all()), operations=list(wave.operations.all()))
        for wave in waves
    ]


def pattern_groups(pattern: dict[str, Any]) -> list[dict[str, Any]]:
    groups = pattern.get("groups") or {}
    return [{"key": key, "groups": groups.get(key) or []} for key in PATTERN_KEYS]


def mass_failure_of(incident: Incident) -> MassFailure | None:
    """The incident's mass failure, if it is one (read once per page)."""
    if not response.present(incident, "mass_failure"):
        return None
    return response.remember(
        incident, "mass_failure", lambda: MassFailure.objects.filter(incident=incident).first()
    )


def panel(incident: Incident, request: HttpRequest) -> Panel | None:
    mass = mass_failure_of(incident)
    if mass is None:
        return None
    waves = wave_rows(mass)
    context: dict[str, Any] = {
        "mass": mass,
        "total": mass.pattern.get("total", 0),
        "pattern": pattern_groups(mass.pattern),
        "rows": stack_rows(mass),
        "waves": waves,
        # After a failed wave the later ones are halted: the plan's last wave says so.
        "halted": bool(waves) and waves[-1].wave.status in (WaveStatus.FAILED, WaveStatus.HALTED),
    }
    return Panel("mass_failure", "admin/ops/incident/panel_mass_failure.html", context, order=30)
