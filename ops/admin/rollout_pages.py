"""The rollout pages' parts (ops/admin/rollouts.py has the views): the plan form, the actions a
rollout's page offers, and the plain values each page shows — the preview of a plan and a
rollout's progress per wave and stack, bounded (one query for every wave's first stacks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode

from ops.models import Rollout, RolloutStack, RolloutStackStatus, RolloutStatus, WaveStatus
from ops.permissions import RUN_ROLLOUT, may
from ops.rollouts import engine, plan
from stacks.catalog import template_names
from stacks.choices import StackStatus
from stacks.compose import RULES
from tenants.models import RolloutRing

# What a rollout's page shows of each wave (one query for all waves; the rest one link away),
# and the preview of each wave's first stacks.
WAVE_STACKS_SHOWN = 25
PREVIEW_STACKS_SHOWN = 10
ANY = [("", "any")]


class RolloutPlanForm(forms.Form):
    """The template, which of its stacks (optional filters) and how the waves go."""

    template = forms.ChoiceField(choices=())
    tenant = forms.CharField(required=False, help_text="A tenant slug: only its stacks.")
    ring = forms.ChoiceField(choices=(), required=False, help_text="Only this rollout ring.")
    current_version = forms.CharField(
        required=False, help_text="Only stacks on this version now (default: any older one)."
    )
    status = forms.ChoiceField(choices=(), required=False, help_text="Only stacks in this status.")
    wave_sizes = forms.CharField(
        initial="1, 5%, 10%, rest",
        help_text="Per ring, in order: a number of stacks or a share, comma-separated; "
        "“rest” takes what is left (e.g. 1, 5%, 10%, rest).",
    )
    soak_minutes = forms.IntegerField(
        min_value=0,
        max_value=7 * 24 * 60,  # a week; and the column is a 32-bit integer
        initial=30,
        help_text="How long a wave's stacks must stay healthy before the next wave starts.",
    )
    require_validation = forms.BooleanField(
        required=False,
        initial=True,
        help_text="The next wave also waits for each stack's validation checklist to pass.",
    )

    FILTERS = ("tenant", "ring", "current_version", "status")
    WAVES = ("wave_sizes", "soak_minutes", "require_validation")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = [(name, name) for name in template_names()]
        self.fields["ring"].choices = ANY + list(RolloutRing.choices)
        self.fields["status"].choices = ANY + list(StackStatus.choices)

    def clean_tenant(self) -> str:
        return self.cleaned_data["tenant"].strip().lower()

    def clean_current_version(self) -> str:
        return self.cleaned_data["current_version"].strip()

    def clean_wave_sizes(self) -> list[str]:
        try:
            return plan.parse_wave_sizes(self.cleaned_data["wave_sizes"])
        except ValidationError as error:
            # The plan names its field in a dict; a clean_<field> refusal is a list.
            raise ValidationError(error.messages) from error

    def filters(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in self.FILTERS if self.cleaned_data[name]}

    def build(self) -> Any:
        """The engine's plan of what this form asks for (ValidationError: refused)."""
        data = self.cleaned_data
        return plan.build_plan(
            data["template"],
            filters=self.filters(),
            wave_sizes=data["wave_sizes"],
            soak_minutes=data["soak_minutes"],
            require_validation=data["require_validation"],
        )


@dataclass(frozen=True)
class RolloutAction:
    """A button on a rollout's page: what the confirmation page asks, and the engine's call."""

    key: str
    label: str
    question: str
    consequence: str
    run: Callable[..., Any]
    danger: bool = False
    per_wave: bool = False


ACTIONS = {
    action.key: action
    for action in (
        RolloutAction(
            "pause",
            "Pause",
            "Pause rollout {rollout}?",
            "Stacks deploying now finish; no further stack or wave starts until you resume.",
            lambda rollout, wave, actor: engine.pause(rollout, actor=actor),
        ),
        RolloutAction(
            "resume",
            "Resume",
            "Resume rollout {rollout}?",
            "The waves go on where they stopped, gated as before.",
            lambda rollout, wave, actor: engine.resume(rollout, actor=actor),
        ),
        RolloutAction(
            "cancel",
            "Cancel rollout",
            "Cancel rollout {rollout}?",
            "No further stack is deployed; stacks already on the new version stay on it. A "
            "cancelled rollout cannot be resumed.",
            lambda rollout, wave, actor: engine.cancel(rollout, actor=actor),
            danger=True,
        ),
        RolloutAction(
            "rollback",
            "Roll back wave {wave}",
            "Roll wave {wave} of rollout {rollout} back?",
            "Each stack of the wave is redeployed with the version it ran before this rollout "
            "(queued in the background budget); the rollout stays halted until you resume.",
            lambda rollout, wave, actor: engine.rollback(wave, actor=actor),
            danger=True,
            per_wave=True,
        ),
    )
}


def add_errors(form: forms.Form, error: ValidationError) -> None:
    """The engine's refusal beside the field it names (or above the form)."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def start_values(form: RolloutPlanForm) -> list[tuple[str, str]]:
    """The previewed form's values, posted back by Start (so Start starts what was previewed)."""
    data = form.cleaned_data
    values = [("template", data["template"])]
    values += [(name, data[name]) for name in form.FILTERS if data[name]]
    values += [
        ("wave_sizes", ", ".join(data["wave_sizes"])),
        ("soak_minutes", data["soak_minutes"]),
    ]
    if data["require_validation"]:
        values.append(("require_validation", "on"))
    return values


def preview_context(preview: Any) -> dict[str, Any]:
    """The plan as the preview shows it: plain values, each wave's first stacks only."""
    waves, position = [], 1
    for wave in preview.waves:
        first = [str(stack) for stack in wave.stacks[:PREVIEW_STACKS_SHOWN]]
        waves.append(
            {
                "number": wave.number,
                "ring_label": RolloutRing(wave.ring).label,
                "size_label": wave.size,
                "count": wave.count,
                "first": first,
                "first_position": position,
                "more": wave.count - len(first),
            }
        )
        position += wave.count
    return {
        "template_name": preview.template_name,
        "to_version": preview.to_version,
        "from_versions": preview.from_versions,
        "total": preview.total,
        "rings": [
            {"label": RolloutRing(ring).label, "count": count}
            for ring, count in preview.ring_counts.items()
        ],
        "waves": waves,
        "findings": preview.findings,
        "rule_count": len(RULES),
        "diff": diff_lines(preview.diff),
        "diff_from": preview.diff_from,
        "notes": getattr(preview, "notes", []),
    }


def diff_lines(diff: str | list[str]) -> list[dict[str, str]]:
    """A unified diff's lines, each with how it is coloured (added, removed, hunk, header)."""
    lines = diff.splitlines() if isinstance(diff, str) else list(diff)
    shown = []
    for line in lines:
        if line.startswith(("+++", "---")):
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        shown.append({"kind": kind, "text": line.rstrip("\n")})
    return shown


def rollout_context(request: HttpRequest, rollout: Rollout) -> dict[str, Any]:
    """What a rollout's live region shows: the rollout, its counts, its waves with their first
    stacks (one query for all waves), and the actions its status allows this user."""
    counts = {
        f"n_{key}": Count("stacks", filter=Q(stacks__status=status))
        for key, status in (
            ("passed", RolloutStackStatus.PASSED),
            ("failed", RolloutStackStatus.FAILED),
            ("rolled_back", RolloutStackStatus.ROLLED_BACK),
        )
    }
    waves = list(rollout.waves.order_by("number").annotate(n_total=Count("stacks"), **counts))
    rows = (
        RolloutStack.objects.filter(rollout=rollout)
        .annotate(
            position=Window(RowNumber(), partition_by=[F("wave_id")], order_by=[F("id").asc()])
        )
        .filter(position__lte=WAVE_STACKS_SHOWN)
        .select_related("stack__tenant", "operation", "rollback_operation")
        .order_by("wave_id", "id")
    )
    by_wave: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_wave.setdefault(row.wave_id, []).append(stack_row(row, rollout.to_version))
    shown = [wave_context(wave, by_wave.get(wave.pk, [])) for wave in waves]
    halted = next((w for w in shown if w["status"] == WaveStatus.FAILED), None)
    if halted is not None:
        first_error = (
            rollout.stacks.filter(wave_id=halted["pk"], status=RolloutStackStatus.FAILED)
            .exclude(error="")
            .values_list("error", flat=True)
            .first()
        )
        # The sentence goes on after it: no "..", whatever the error ended with.
        halted["first_error"] = (first_error or "").rstrip(" .")
    can_act = may(request.user, RUN_ROLLOUT)
    return {
        "rollout": {
            "pk": rollout.pk,
            "status": rollout.status,
            "status_display": rollout.get_status_display(),
            "template_name": rollout.template_name,
            "to_version": rollout.to_version,
            "from_versions": rollout.from_versions or [],
            "wave_sizes": rollout.wave_sizes or [],
            "soak_minutes": rollout.soak_minutes,
            "require_validation": rollout.require_validation,
            "created_at": rollout.created_at,
            "created_by": rollout.created_by,
            "filters_text": filters_text(rollout.template_name, rollout.filters or {}),
            "active": rollout.status not in (RolloutStatus.CANCELLED, RolloutStatus.COMPLETED),
        },
        "totals": {
            "total": sum(w["total"] for w in shown),
            "passed": sum(w["passed"] for w in shown),
            "failed": sum(w["failed"] for w in shown),
            "rolled_back": sum(w["rolled_back"] for w in shown),
        },
        "waves": shown,
        "halted_wave": halted if rollout.status == RolloutStatus.HALTED else None,
        # Halted, its failed wave rolled back since: what stopped it, and that Resume goes on.
        "rolled_back_halt": rollout.status == RolloutStatus.HALTED and halted is None,
        "status_detail": rollout.status_detail.rstrip(" ."),
        "can_act": can_act,
        "actions": actions_for(rollout, waves) if can_act else [],
    }


def wave_context(wave: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "pk": wave.pk,
        "number": wave.number,
        "ring_display": wave.get_ring_display(),
        "status": wave.status,
        "status_display": wave.get_status_display(),
        "started_at": wave.started_at,
        "finished_at": wave.finished_at,
        "total": wave.n_total,
        "passed": wave.n_passed,
        "failed": wave.n_failed,
        "rolled_back": wave.n_rolled_back,
        "stacks": rows,
        "more": wave.n_total > len(rows),
        "all_url": reverse("admin:ops_rolloutstack_changelist")
        + "?"
        + urlencode({"wave": wave.pk}),
    }


def stack_row(row: RolloutStack, to_version: str) -> dict[str, Any]:
    stack = row.stack
    operations = [
        {
            "url": reverse("admin:stacks_operation_change", args=[op.pk]),
            "label": f"{label} #{op.pk}",
            "status": op.status,
            "status_display": op.get_status_display(),
        }
        for label, op in (("Redeploy", row.operation), ("Rollback", row.rollback_operation))
        if op is not None
    ]
    return {
        "tenant": stack.tenant.slug,
        "stack_name": stack.stack_name,
        "stack_url": reverse("admin:stacks_stack_change", args=[stack.pk]),
        "from_version": row.from_version,
        "to_version": to_version,
        "rolled_back": row.status == RolloutStackStatus.ROLLED_BACK,
        "status": row.status,
        "status_display": row.get_status_display(),
        "operations": operations,
        "error": row.error,
    }


def actions_for(rollout: Rollout, waves: list[Any]) -> list[dict[str, Any]]:
    """The buttons this rollout's status allows: links to their confirmation pages."""
    found = []
    for key in ("pause", "resume", "cancel"):
        if rollout.can(key):
            url = reverse("admin:ops_rollout_act", args=[rollout.pk, key])
            found.append({"key": key, "label": ACTIONS[key].label, "url": url,
                          "danger": ACTIONS[key].danger})  # fmt: skip
    for wave in waves:
        if wave.can_roll_back():
            url = reverse("admin:ops_rollout_act", args=[rollout.pk, "rollback"])
            found.append(
                {
                    "key": f"rollback-{wave.number}",
                    "label": ACTIONS["rollback"].label.format(wave=wave.number),
                    "url": f"{url}?wave={wave.number}",
                    "danger": True,
                }
            )
    return found


def filters_text(template_name: str, filters: dict[str, Any]) -> str:
    """The stack query a rollout was built from, in words."""
    words = [f"template {template_name}"]
    words += [f"{name.replace('_', ' ')} {value}" for name, value in filters.items() if value]
    return ", ".join(words)
