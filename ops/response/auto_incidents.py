"""Incidents cfadmin opens by itself after each health run (ops.health.record): a critical
check down AUTO_INCIDENT_AFTER_FAILURES runs in a row opens (or joins) the Platform Down
incident with its outage linked; the mass-failure rule opens (or joins) one "Mass container
failure" incident. One open incident per rule: AutoIncident.key is unique, so two runs at once
open one and the other joins it. The opener is "cfadmin"."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from cfadmin import audit
from cfadmin.models import AuditAction
from ops import incidents
from ops.checks import resources
from ops.models import (
    CheckStatus,
    EscalationContact,
    Incident,
    IncidentEventKind,
    IncidentStatus,
    Outage,
    Severity,
)
from ops.models.evidence import EvidenceItem, EvidenceKind
from ops.models.mass_failure import AutoIncident, MassFailure
from ops.response import mass_failure_detect as detect
from stacks.models import Stack

logger = logging.getLogger(__name__)

OPENER = "cfadmin"  # the actor label of what cfadmin does by itself (no user)
PLATFORM_DOWN = "Platform Down"
PLATFORM_KEY = "platform_down"
MASS_FAILURE_KEY = "mass_failure"
MASS_FAILURE_TITLE = "Mass container failure"


def failures_needed() -> int:
    return int(getattr(settings, "AUTO_INCIDENT_AFTER_FAILURES", 3))


def after_health_record(results: list[Any]) -> None:
    """Called by ops.health.record with the results it just stored, after they are committed.
    A rule that fails is logged: the health run's results stay recorded."""
    for rule in (platform_down_rule, mass_failure_rule):
        try:
            rule(results)
        except Exception:  # never lose a health run to a rule
            logger.exception("auto-incident rule %s failed", rule.__name__)


def platform_contact() -> EscalationContact | None:
    return EscalationContact.objects.filter(issue_type__iexact=PLATFORM_DOWN).first()


def open_or_join(
    key: str,
    *,
    open_new: Callable[[], Incident],
    join: Callable[[Incident], None],
    adopt: Callable[[], Incident | None] | None = None,
) -> tuple[Incident, bool]:
    """The open incident of rule `key` joined, or a new one opened (or an open one adopted);
    returns (incident, opened). A key whose incident was resolved is freed first. A lost race
    (IntegrityError on the unique key) rolls back this run's incident and joins the winner's."""
    for _ in range(3):
        with transaction.atomic():
            held = AutoIncident.objects.filter(key=key).select_related("incident").first()
            if held is not None and held.incident.is_resolved:
                AutoIncident.objects.filter(
                    pk=held.pk, incident__status=IncidentStatus.RESOLVED
                ).delete()
                held = None
            if held is not None:
                join(held.incident)
                return held.incident, False
        try:
            with transaction.atomic():
                incident = adopt() if adopt else None
                opened = incident is None
                if incident is None:
                    incident = open_new()
                AutoIncident.objects.create(key=key, incident=incident)
                if not opened:
                    join(incident)
            return incident, opened
        except IntegrityError:
            continue  # another health run opened it meanwhile: join that one
    raise RuntimeError(f"auto-incident {key}: could not open or join")


def _announce(incident: Incident, message: str, *, opened: bool) -> None:
    """A timeline line (what cfadmin did and why) and its audit event."""
    incidents.add_event(incident, IncidentEventKind.AUTOMATIC, message, actor=OPENER)
    audit.record(
        actor=OPENER,
        action=AuditAction.CREATE if opened else AuditAction.UPDATE,
        target=incident,
        message=message,
    )


# --- a critical check down N runs in a row ---------------------------------------------------


def platform_down_rule(results: list[Any]) -> None:
    needed = failures_needed()
    for result in results:
        if not (result.critical and result.status == CheckStatus.DOWN):
            continue
        outage = Outage.objects.open().filter(check_name=result.check_name).first()
        if outage is None or outage.failures < needed:
            continue
        open_or_join(
            PLATFORM_KEY,
            open_new=lambda outage=outage: _open_platform_down(outage),
            join=lambda incident, outage=outage: _link_outage(incident, outage),
            adopt=_open_platform_incident,
        )


def _why(outage: Outage) -> str:
    return (
        f"the critical health check {outage.check_name} was down {outage.failures} runs in a "
        f"row (AUTO_INCIDENT_AFTER_FAILURES = {failures_needed()}): {outage.last_message[:300]}"
    )


def _open_platform_incident() -> Incident | None:
    """An open Platform Down incident someone opened by hand: joined rather than doubled."""
    return (
        Incident.objects.unresolved()
        .filter(escalation__issue_type__iexact=PLATFORM_DOWN, mass_failure__isnull=True)
        .order_by("opened_at", "pk")
        .first()
    )


def _open_platform_down(outage: Outage) -> Incident:
    initial = incidents.initial_from_outage(outage)
    incident = Incident(
        title=initial["title"][:200],
        summary=initial["summary"],
        severity=Severity.SEV1,
        escalation=platform_contact(),
    )
    incidents.prepare_new(incident, actor=OPENER)
    incident.save()
    incident.outages.add(outage)
    incidents.record_opened(incident, actor=OPENER)
    _announce(incident, f"Opened automatically by cfadmin: {_why(outage)}", opened=True)
    return incident


def _link_outage(incident: Incident, outage: Outage) -> None:
    if incident.outages.filter(pk=outage.pk).exists():
        return
    incident.outages.add(outage)
    _announce(
        incident, f"cfadmin linked the outage of {outage.check_name}: {_why(outage)}", opened=False
    )


# --- several stacks leave running within the window ------------------------------------------


def mass_failure_rule(results: list[Any], now: datetime | None = None) -> Incident | None:
    """Open the mass-failure incident when MASS_FAILURE_STACKS stacks were first seen down
    within the window; while it is open, link each further stack that goes down to it."""
    now = now or timezone.now()
    sightings = detect.detect(results, now)
    if sightings is None:
        return None
    held = AutoIncident.objects.filter(key=MASS_FAILURE_KEY, incident__mass_failure__isnull=False)
    held = held.exclude(incident__status=IncidentStatus.RESOLVED).select_related("incident").first()
    if held is not None:
        since = held.incident.mass_failure.detected_at - detect.window()
        linked = set(held.incident.mass_failure.stacks.values_list("pk", flat=True))
        found = [s for s in sightings if s.first_seen_at >= since and s.stack_id not in linked]
    else:
        found = detect.recent(sightings, now)
        if len(found) < detect.threshold():
            return None
    if not found:
        return None
    entries = [(s.stack, s.first_seen_at) for s in found]
    servers = detect.servers_by_name(s.stack for s in found)  # read before the transaction
    incident, _ = open_or_join(
        MASS_FAILURE_KEY,
        open_new=lambda: _open_mass_failure(entries, servers, now),
        join=lambda incident: _join_mass_failure(incident, entries, servers),
    )
    return incident


def _link_stacks(incident: Incident, stacks: list[Stack]) -> None:
    incident.stacks.add(*stacks)
    incident.tenants.add(*{stack.tenant for stack in stacks})


def _open_mass_failure(
    entries: list[tuple[Stack, datetime]], servers: dict[str, str], now: datetime
) -> Incident:
    pattern = detect.build_pattern(entries, servers)
    stacks = [stack for stack, _ in entries]
    incident = Incident(
        title=f"{MASS_FAILURE_TITLE}: {len(stacks)} stacks down",
        summary=f"Pattern: {detect.pattern_summary(pattern)}.",
        severity=Severity.SEV2,
        escalation=platform_contact(),
    )
    incidents.prepare_new(incident, actor=OPENER)
    incident.save()
    mass = MassFailure.objects.create(incident=incident, detected_at=now, pattern=pattern)
    mass.stacks.add(*stacks)
    _link_stacks(incident, stacks)
    incidents.record_opened(incident, actor=OPENER)
    _keep_server_resources(incident)
    _announce(
        incident,
        f"Opened automatically by cfadmin: {len(stacks)} stacks left running within "
        f"{detect.window().seconds // 60} minutes (MASS_FAILURE_STACKS = {detect.threshold()}): "
        f"{', '.join(sorted(str(s) for s in stacks))}. Pattern: {detect.pattern_summary(pattern)}.",
        opened=True,
    )
    return incident


def _keep_server_resources(incident: Incident) -> None:
    """The servers' latest measured memory, disk, containers and volume sizes (the resources
    health checks' stored results, no remote call), kept on the incident as evidence of the
    moment the mass failure was seen."""
    figures = resources.snapshot()
    EvidenceItem(
        incident=incident,
        kind=EvidenceKind.SERVER_RESOURCES,
        title="Server resources when the mass failure was detected",
        content=json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n",
        captured_by=None,
        captured_by_repr=OPENER,
    ).save()


def _join_mass_failure(
    incident: Incident, entries: list[tuple[Stack, datetime]], servers: dict[str, str]
) -> None:
    mass = MassFailure.objects.select_for_update().get(incident=incident)
    linked = set(mass.stacks.values_list("pk", flat=True))
    new = [(stack, seen) for stack, seen in entries if stack.pk not in linked]
    if not new:
        return
    earlier = [
        (stack, datetime.fromisoformat(mass.pattern.get("first_seen", {}).get(str(stack), "")))
        if str(stack) in mass.pattern.get("first_seen", {})
        else (stack, mass.detected_at)
        for stack in mass.stacks.select_related("tenant")
    ]
    known = {**mass.pattern.get("servers", {}), **servers}
    mass.pattern = detect.build_pattern(earlier + new, known)
    mass.save(update_fields=["pattern"])
    stacks = [stack for stack, _ in new]
    mass.stacks.add(*stacks)
    _link_stacks(incident, stacks)
    _announce(
        incident,
        f"cfadmin linked {len(stacks)} more stacks that left running: "
        f"{', '.join(sorted(str(s) for s in stacks))}. Pattern now: "
        f"{detect.pattern_summary(mass.pattern)}.",
        opened=False,
    )
