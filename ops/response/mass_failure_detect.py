"""Detecting a mass failure from the active_stacks health check (ops.health): every run lists
the stacks cfadmin expects running that Coolify does not report up. Each such stack gets a
sighting (first seen, last seen); when MASS_FAILURE_STACKS of them were first seen within
MASS_FAILURE_WINDOW_MINUTES, the mass-failure rule opens (or joins) its incident."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ops.models import CheckStatus
from ops.models.mass_failure import StackDownSighting
from stacks.choices import (
    IN_FLIGHT_OPERATION_STATUSES,
    OperationKind,
    OperationStatus,
    StackStatus,
)
from stacks.clients.errors import ClientError
from stacks.models import Operation, Stack

ACTIVE_STACKS_CHECK = "active_stacks"
# Operations by which a person takes a stack out of `running` on purpose.
PERSON_STOPS = (OperationKind.STOP, OperationKind.DELETE, "isolate")
UNKNOWN_SERVER = "unknown server"


def threshold() -> int:
    return int(getattr(settings, "MASS_FAILURE_STACKS", 5))


def window() -> timedelta:
    return timedelta(minutes=int(getattr(settings, "MASS_FAILURE_WINDOW_MINUTES", 10)))


def down_names(details: dict[str, Any]) -> dict[str, str]:
    """The check's `not_running` lines ("tenant/stack (Exited: exited)") → {name: state}."""
    found = {}
    for line in details.get("not_running") or ():
        name, _, state = str(line).partition(" (")
        found[name.strip()] = state.rstrip(")")[:64]
    return found


def stacks_named(names: Iterable[str]) -> list[Stack]:
    """The live stacks called "tenant/stack" among `names`."""
    pairs = {tuple(name.split("/", 1)) for name in names if "/" in name}
    if not pairs:
        return []
    candidates = Stack.objects.filter(
        tenant__slug__in={tenant for tenant, _ in pairs},
        stack_name__in={stack for _, stack in pairs},
    ).exclude(status=StackStatus.DELETED)
    return [
        s for s in candidates.select_related("tenant") if (s.tenant.slug, s.stack_name) in pairs
    ]


def stopped_on_purpose(stacks: list[Stack]) -> set[int]:
    """The ids of those stacks a person stopped: contained (isolated or stopped for an
    incident), or whose latest operation is a stop, delete or isolate under way or done — such a
    stack did not fail. One query for all of them, whatever their histories' length."""
    purposeful = {stack.pk for stack in stacks if stack.containment}
    others = [stack.pk for stack in stacks if stack.pk not in purposeful]
    if others:
        purposeful.update(
            Operation.objects.latest_of_stacks(others)
            .filter(
                kind__in=PERSON_STOPS,
                status__in=(*IN_FLIGHT_OPERATION_STATUSES, OperationStatus.SUCCEEDED),
            )
            .values_list("stack_id", flat=True)
        )
    return purposeful


def record_sightings(details: dict[str, Any], now: datetime) -> list[StackDownSighting]:
    """Sight each stack the check found not running (keeping its first-seen time), forget
    those that run again or that a person stopped; returns the current sightings."""
    states = down_names(details)
    named = stacks_named(states)
    stopped = stopped_on_purpose(named)
    down = [s for s in named if s.pk not in stopped]
    with transaction.atomic():
        for stack in down:
            state = states.get(str(stack), "")
            updated = StackDownSighting.objects.filter(stack=stack).update(
                last_seen_at=now, state=state
            )
            if not updated:
                StackDownSighting.objects.get_or_create(
                    stack=stack,
                    defaults={"first_seen_at": now, "last_seen_at": now, "state": state},
                )
        down_ids = {s.pk for s in down}
        gone = list(
            StackDownSighting.objects.exclude(stack_id__in=down_ids).select_related("stack")
        )
        # Not in this run's list, and not come back: cfadmin marked it error, or stopped
        # without a person's stop (reconcile took Coolify's status: still down, just not
        # expected).
        maybe_down = [
            s.stack for s in gone if s.stack.status in (StackStatus.ERROR, StackStatus.STOPPED)
        ]
        still_down = {stack.pk for stack in maybe_down} - stopped_on_purpose(maybe_down)
        for sighting in gone:
            if sighting.stack_id not in still_down:
                sighting.delete()
    return list(StackDownSighting.objects.select_related("stack__tenant").order_by("pk"))


def recent(sightings: list[StackDownSighting], now: datetime) -> list[StackDownSighting]:
    """The sightings first seen within the window."""
    since = now - window()
    return [s for s in sightings if s.first_seen_at >= since]


def detect(results: list[Any], now: datetime | None = None) -> list[StackDownSighting] | None:
    """From a health run's stored results: every current sighting (each stack down, with its
    first-seen time), or None when the run had no usable active_stacks result (the sightings
    are then left as they are)."""
    now = now or timezone.now()
    result = next((r for r in results if r.check_name == ACTIVE_STACKS_CHECK), None)
    if result is None or (result.status == CheckStatus.DOWN and not result.details):
        return None  # not run, or Coolify did not answer: nothing learnt about the stacks
    return record_sightings(result.details or {}, now)


# --- the pattern -----------------------------------------------------------------------------


def service_servers(uuids: Iterable[str]) -> dict[str, str]:
    """Coolify service uuid → the name of the server it runs on. Coolify's service answer has
    no server uuid (the simulator gives server_id 0, as a destination-less read); the server's
    resource list does: GET /servers/{uuid}/resources lists `definedResources()` with their
    uuids (coollabsio/coolify app/Http/Controllers/Api/ServersController.php,
    resources_by_server). A Coolify that does not answer leaves them unknown."""
    from stacks.remote.clients import get_coolify

    wanted = {u for u in uuids if u}
    found: dict[str, str] = {}
    if not wanted:
        return found
    try:
        with get_coolify(timeout=settings.HEALTHCHECK_TIMEOUT, attempts=1) as coolify:
            for server in coolify.list_servers():
                for resource in coolify.server_resources(str(server.get("uuid"))):
                    if resource.get("uuid") in wanted:
                        found[resource["uuid"]] = str(server.get("name") or server.get("uuid"))
    except ClientError:
        pass
    return found


def servers_by_name(stacks: Iterable[Stack]) -> dict[str, str]:
    """ "tenant/stack" → its server's name (UNKNOWN_SERVER when Coolify does not say)."""
    stacks = list(stacks)
    servers = service_servers(s.coolify_service_uuid for s in stacks)
    return {str(s): servers.get(s.coolify_service_uuid, UNKNOWN_SERVER) for s in stacks}


def build_pattern(
    entries: Iterable[tuple[Stack, datetime]], servers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Groups of the stacks (each with its first-seen time) by template, tenant, server and
        first-seen minute: each a list of {value, stacks, count}, the largest group first. A group
        holding every stack is the pattern ("all on server X"); `servers` maps service uuid →
        server name ("tenant/stack" → name). `first_seen` and `servers` keep each stack's, so a
    join can rebuild the pattern."""
    servers = servers or {}
    by: dict[str, dict[str, list[str]]] = {k: defaultdict(list) for k in PATTERN_KEYS}
    first_seen: dict[str, str] = {}
    for stack, seen_at in entries:
        name = str(stack)
        first_seen[name] = seen_at.isoformat()
        by["template"][stack.template_name].append(name)
        by["tenant"][stack.tenant.slug].append(name)
        by["server"][servers.get(name, UNKNOWN_SERVER)].append(name)
        minute = timezone.localtime(seen_at).strftime("%Y-%m-%d %H:%M")
        by["time"][minute].append(name)
    total = sum(len(names) for names in by["template"].values())
    return {
        "total": total,
        "first_seen": first_seen,
        "servers": {name: servers.get(name, UNKNOWN_SERVER) for name in first_seen},
        "groups": {
            key: sorted(
                (
                    {"value": value, "stacks": sorted(names), "count": len(names)}
                    for value, names in groups.items()
                ),
                key=lambda g: (-g["count"], g["value"]),
            )
            for key, groups in by.items()
        },
    }


PATTERN_KEYS = ("template", "tenant", "server", "time")


def pattern_summary(pattern: dict[str, Any]) -> str:
    """One line: what the stacks share (a group holding all of them), or the largest groups."""
    total = pattern.get("total", 0)
    parts = []
    for key in PATTERN_KEYS:
        groups = pattern.get("groups", {}).get(key) or []
        if not groups:
            continue
        top = groups[0]
        if top["count"] == total and total > 1:
            parts.append(f"all {key} {top['value']}")
        else:
            parts.append(f"{len(groups)} {key}s (most: {top['value']}, {top['count']})")
    return "; ".join(parts)
