"""A rollout's plan, shown before anything starts: which stacks a template version goes to and
in what order (ring canary → standard → last, then tenant and stack name), the waves each ring
is cut into, the compose diff from the version most stacks run now, and the new version's
hardening audit. Bounded for 10,000 stacks: ids and names only, one query."""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, QuerySet, Value, When

from stacks.catalog import template_names
from stacks.choices import Containment, StackStatus
from stacks.compose import Finding, Manifest, TemplateError, manifest_for, render_sample
from stacks.models import Stack
from tenants.models import RolloutRing

REST = "rest"
_SIZE = re.compile(r"^(?:[1-9][0-9]{0,5}|(?:100|[1-9][0-9]?)%)$")
FILTER_NAMES = ("tenant", "ring", "status", "current_version")
# At most this many waves in a plan, all rings together: every wave is a gate a person watches
# and a block the preview page renders, and sizes such as "1" (the last size repeats) would cut
# 10,000 stacks into 10,000 waves. 50 leaves room for "1, 1%, 2%, ..." style plans per ring.
MAX_WAVES = 50


@dataclass(frozen=True)
class PlannedWave:
    """One wave: its ring, the size it came from, its stacks in order (ids and "tenant/stack")."""

    number: int
    ring: str
    size: str
    stack_ids: list[int]
    stacks: list[str]

    @property
    def count(self) -> int:
        return len(self.stack_ids)


@dataclass
class RolloutPlan:
    template_name: str
    to_version: str
    filters: dict[str, str]
    wave_sizes: list[str]
    soak_minutes: int
    require_validation: bool
    waves: list[PlannedWave]
    from_versions: list[str]  # most stacks first
    ring_counts: dict[str, int]  # in rollout order; rings without stacks left out
    diff_from: str
    diff: str
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(wave.count for wave in self.waves)

    @property
    def stack_ids(self) -> list[int]:
        return [pk for wave in self.waves for pk in wave.stack_ids]


def parse_wave_sizes(text: str | list[str]) -> list[str]:
    """Wave sizes per ring, e.g. "1, 5%, 10%, rest": counts, shares of the ring (rounded up)
    and at most one "rest", last. ValidationError (field wave_sizes) when anything else."""
    parts = text if isinstance(text, list) else re.split(r"[,\s]+", text)
    sizes = [str(part).strip().lower() for part in parts if str(part).strip()]
    if not sizes:
        raise ValidationError({"wave_sizes": "Give at least one wave size, e.g. 1, 5%, rest."})
    for position, size in enumerate(sizes):
        if size == REST:
            if position != len(sizes) - 1:
                raise ValidationError({"wave_sizes": "“rest” must be the last wave size."})
        elif not _SIZE.match(size):
            raise ValidationError(
                {
                    "wave_sizes": f"“{size}” is not a wave size: give a number of stacks (1), a "
                    "share of the ring (5%, up to 100%) or “rest”."
                }
            )
    return sizes


def cut_waves(count: int, sizes: list[str]) -> list[tuple[str, int]]:
    """How one ring of `count` stacks is cut: (size, how many) per wave, empty waves left out.
    Shares are of the ring, rounded up; the last size takes what is left when it is "rest",
    and waves of the last given size repeat until the ring is done otherwise."""
    cuts: list[tuple[str, int]] = []
    left = count
    position = 0
    while left > 0:
        size = sizes[min(position, len(sizes) - 1)]
        if size == REST:
            take = left
        elif size.endswith("%"):
            take = math.ceil(count * int(size[:-1]) / 100)
        else:
            take = int(size)
        take = min(max(take, 1), left)
        cuts.append((size, take))
        left -= take
        position += 1
    return cuts


def wave_count(ring_sizes: list[int], sizes: list[str]) -> int:
    """How many waves `sizes` cut rings of these sizes into."""
    return sum(len(cut_waves(count, sizes)) for count in ring_sizes)


def check_wave_count(ring_sizes: list[int], sizes: list[str]) -> None:
    """ValidationError (field wave_sizes) when the sizes make more than MAX_WAVES waves."""
    count = wave_count(ring_sizes, sizes)
    if count > MAX_WAVES:
        given = ", ".join(sizes)
        raise ValidationError(
            {
                "wave_sizes": f"These sizes ({given}) make {count:,} waves; at most {MAX_WAVES}: "
                f"end with “{REST}” or give larger sizes (the last size repeats until each "
                "ring is done)."
            }
        )


def ring_order() -> Case:
    return Case(
        *(
            When(tenant__rollout_ring=ring, then=Value(i))
            for i, ring in enumerate(RolloutRing.order())
        ),
        default=Value(len(RolloutRing.order())),
        output_field=IntegerField(),
    )


def candidates(template_name: str, filters: dict[str, str]) -> QuerySet[Stack]:
    """The template's stacks the filters name, before the target version and liveness rules."""
    stacks = Stack.objects.filter(template_name=template_name).exclude(status=StackStatus.DELETED)
    if filters.get("tenant"):
        stacks = stacks.filter(tenant__slug=filters["tenant"])
    if filters.get("ring"):
        stacks = stacks.filter(tenant__rollout_ring=filters["ring"])
    if filters.get("status"):
        stacks = stacks.filter(status=filters["status"])
    if filters.get("current_version"):
        stacks = stacks.filter(template_version=filters["current_version"])
    return stacks


def clean_filters(filters: dict[str, Any]) -> dict[str, str]:
    """The known filters with a value; an unknown name or a bad ring/status is refused."""
    cleaned = {}
    for name, value in (filters or {}).items():
        if name not in FILTER_NAMES:
            raise ValidationError({name: f"“{name}” is not a rollout filter ({FILTER_NAMES})."})
        if value not in (None, ""):
            cleaned[name] = str(value).strip()
    if cleaned.get("ring") and cleaned["ring"] not in RolloutRing.values:
        raise ValidationError({"ring": f"“{cleaned['ring']}” is not a rollout ring."})
    if cleaned.get("status") and cleaned["status"] not in StackStatus.values:
        raise ValidationError({"status": f"“{cleaned['status']}” is not a stack status."})
    return cleaned


def build_plan(
    template_name: str,
    *,
    filters: dict[str, Any] | None = None,
    wave_sizes: str | list[str] | tuple[str, ...] = ("1", "5%", "10%", REST),
    soak_minutes: int = 30,
    require_validation: bool = True,
    to_version: str = "",
) -> RolloutPlan:
    """The plan of rolling `to_version` (default: the version on disk) of a template to the
    stacks the filters find. Only running, not contained stacks on another version are in it;
    stopped and failed ones are left out (a redeploy would start them, and they cannot pass
    the health gate), and the notes say how many. ValidationError naming the field when the
    template, version, filters or sizes are refused, or when no stack is left."""
    if template_name not in template_names():
        raise ValidationError({"template": f"Unknown template “{template_name}”."})
    sizes = parse_wave_sizes(wave_sizes if isinstance(wave_sizes, str) else list(wave_sizes))
    cleaned = clean_filters(filters or {})
    if cleaned.get("status") and cleaned["status"] != StackStatus.RUNNING:
        raise ValidationError(
            {"status": "A rollout redeploys running stacks only: choose running or any."}
        )
    try:
        target = manifest_for(template_name, to_version)
    except TemplateError as error:
        raise ValidationError({"to_version": str(error)}) from error
    if soak_minutes < 0:
        raise ValidationError({"soak_minutes": "The soak time cannot be negative."})
    found = candidates(template_name, cleaned).exclude(template_version=target.version)
    rows = list(
        # A stack that never recorded its version could not be rolled back to it: left out.
        found.filter(status=StackStatus.RUNNING, containment=Containment.NONE)
        .exclude(template_version="")
        .annotate(ring_position=ring_order())
        .order_by("ring_position", "tenant__slug", "stack_name", "pk")
        .values_list("pk", "tenant__slug", "stack_name", "tenant__rollout_ring", "template_version")
    )
    if not rows:
        raise ValidationError(
            {"template": f"No running stack of {template_name} needs {target.version}."}
        )
    ring_sizes = Counter(row[3] for row in rows)
    check_wave_count(list(ring_sizes.values()), sizes)
    waves = _waves(rows, sizes)
    versions = Counter(row[4] for row in rows)
    from_versions = [version for version, _ in versions.most_common()]
    diff_from = from_versions[0]
    plan = RolloutPlan(
        template_name=template_name,
        to_version=target.version,
        filters=cleaned,
        wave_sizes=sizes,
        soak_minutes=soak_minutes,
        require_validation=require_validation,
        waves=waves,
        from_versions=from_versions,
        ring_counts=dict(sorted(ring_sizes.items(), key=_ring_key)),
        diff_from=diff_from,
        diff=compose_diff(template_name, diff_from, target),
        findings=render_sample(target).findings,
    )
    plan.notes = _notes(plan, found, rows)
    return plan


def _ring_key(item: tuple[str, int]) -> int:
    order = RolloutRing.order()
    return order.index(item[0]) if item[0] in order else len(order)


def _waves(rows: list[tuple], sizes: list[str]) -> list[PlannedWave]:
    waves: list[PlannedWave] = []
    for ring in RolloutRing.order():
        ring_rows = [row for row in rows if row[3] == ring]
        start = 0
        for size, take in cut_waves(len(ring_rows), sizes):
            chunk = ring_rows[start : start + take]
            start += take
            waves.append(
                PlannedWave(
                    number=len(waves) + 1,
                    ring=ring,
                    size=size,
                    stack_ids=[row[0] for row in chunk],
                    stacks=[f"{row[1]}/{row[2]}" for row in chunk],
                )
            )
    return waves


def compose_diff(template_name: str, from_version: str, target: Manifest) -> str:
    """The unified diff of the sample render (the runbook's sample names) from one version to
    the other; the template source's diff when the old version renders no more; "" when cfadmin
    has no stored release of the old version."""
    try:
        before = manifest_for(template_name, from_version)
    except TemplateError:
        return ""
    try:
        old, new = render_sample(before).text, render_sample(target).text
    except TemplateError:
        old, new = before.compose_source, target.compose_source
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{template_name} {from_version}",
            tofile=f"{template_name} {target.version}",
        )
    )


def _notes(plan: RolloutPlan, found: QuerySet[Stack], rows: list[tuple]) -> list[str]:
    notes = []
    left_out = found.exclude(pk__in=[]).exclude(
        status=StackStatus.RUNNING, containment=Containment.NONE
    )
    isolated = left_out.filter(containment=Containment.ISOLATED).count()
    not_running = left_out.filter(containment=Containment.NONE).count()
    if not_running:
        notes.append(
            f"{not_running} stack(s) of {plan.template_name} not running (stopped, failed or "
            "busy deploying) are left out: a redeploy would start them and they cannot pass the "
            "health gate. Redeploy them by hand once they are fixed."
        )
    if isolated:
        notes.append(f"{isolated} isolated (contained) stack(s) are left out until released.")
    unrecorded = found.filter(
        status=StackStatus.RUNNING, containment=Containment.NONE, template_version=""
    ).count()
    if unrecorded:
        notes.append(
            f"{unrecorded} running stack(s) with no recorded template version are left out: "
            "a rollback could not bring them back. Redeploy them by hand first."
        )
    unknown = [v for v in plan.from_versions if not _stored(plan.template_name, v)]
    if unknown:
        count = sum(1 for row in rows if row[4] in unknown)
        notes.append(
            f"{count} stack(s) run a version cfadmin has no stored release of "
            f"({', '.join(v or '—' for v in unknown)}): a rollback cannot bring them back to it."
        )
    if not plan.diff:
        notes.append(f"No stored release of {plan.diff_from or '—'}: no compose diff to show.")
    return notes


def _stored(template_name: str, version: str) -> bool:
    try:
        manifest_for(template_name, version)
    except TemplateError:
        return False
    return bool(version)
