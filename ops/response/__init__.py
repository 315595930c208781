"""What an incident can do beyond logging (issue 15): each feature module of this package
(containment, evidence, leaks, mass_failure, recovery, postmortem) declares its FEATURE — the
buttons it adds to an incident's page, the read-only panel it shows there, extra admin pages and
what stops the incident from being resolved. ops.incident_actions and the incident admin gather
them here; a feature never edits those."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.db.models import BooleanField, ExpressionWrapper, Q

if TYPE_CHECKING:
    from django.http import HttpRequest

    from ops.incident_actions import Action, ActionForm
    from ops.models import Incident

FEATURE_MODULES = (
    "ops.response.containment",
    "ops.response.evidence",
    "ops.response.leaks",
    "ops.response.mass_failure",
    "ops.response.recovery",
    "ops.response.postmortem",
    # Issue 16: telling people from the incident.
    "ops.response.notifications_panel",
    "ops.response.public_updates",
    "ops.response.customer_updates",
)


@dataclass(frozen=True)
class Panel:
    """A read-only section of an incident's page: `template` rendered with `context` (and the
    page's own context). Panels sit in the page's live region, so they refresh as work goes on."""

    key: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100


@dataclass(frozen=True)
class Feature:
    """One capability of an incident's response.

    - actions: URL action name (unique across features) → ops.incident_actions.Action; posted to
      the incident's `<id>/<action>/do/` URL like the built-in buttons.
    - forms(incident, user): the forms (ActionForm; template admin/ops/incident/action_<key>.html)
      this feature offers the user now, under `heading`; () when none.
    - panel(incident, request): a read-only Panel, or None.
    - urls(model_admin): extra admin URL patterns (wrap views in model_admin.admin_site.admin_view).
    - resolve_blockers(incident, resolution): why the incident cannot be resolved yet (each a
      sentence naming what to do); [] when nothing stops it.
    - presence(): whether the feature has anything on an incident (see `present`).
    """

    key: str
    heading: str = ""
    actions: Mapping[str, Action] = field(default_factory=dict)
    forms: Callable[[Incident, Any], tuple[ActionForm, ...]] | None = None
    panel: Callable[[Incident, HttpRequest], Panel | None] | None = None
    urls: Callable[[Any], list[Any]] | None = None
    resolve_blockers: Callable[[Incident, str], list[str]] | None = None
    # Whether the feature has anything on an incident: an expression over the incident's
    # OuterRef("pk") (an Exists, or a Q of them). The page asks every feature at once
    # (preload); a feature whose answer is no reads nothing more.
    presence: Callable[[], Any] | None = None


def features() -> list[Feature]:
    """Every feature, in FEATURE_MODULES order."""
    return [import_module(name).FEATURE for name in FEATURE_MODULES]


def actions() -> dict[str, Action]:
    found: dict[str, Action] = {}
    for feature in features():
        found.update(feature.actions)
    return found


def panels(incident: Incident, request: HttpRequest) -> list[Panel]:
    shown = [feature.panel(incident, request) for feature in features() if feature.panel]
    return sorted((panel for panel in shown if panel is not None), key=lambda p: p.order)


def resolve_blockers(incident: Incident, resolution: str) -> list[str]:
    return [
        reason
        for feature in features()
        if feature.resolve_blockers
        for reason in feature.resolve_blockers(incident, resolution)
    ]


def urls(model_admin: Any) -> list[Any]:
    return [url for feature in features() if feature.urls for url in feature.urls(model_admin)]


# --- what a page reads once for every feature ---------------------------------------------------


def _memo(incident: Incident) -> dict[str, Any]:
    """Facts about the incident read once per page and shared by the features' panels and
    forms (kept on the instance the page renders)."""
    return incident.__dict__.setdefault("_response_memo", {})


def _present_expression(feature: Feature) -> Any:
    return ExpressionWrapper(Q(feature.presence()), output_field=BooleanField())


def _presence_annotations() -> dict[str, Any]:
    return {
        f"has_{feature.key}": _present_expression(feature)
        for feature in features()
        if feature.presence
    }


def with_presence(queryset: Any) -> Any:
    """Incidents that carry, in the same query, whether each feature has anything on them
    (`has_<key>`; `preload` takes them from there)."""
    return queryset.annotate(**_presence_annotations())


def preload(incident: Incident) -> None:
    """Whether each feature has anything on the incident: from `with_presence`'s annotations
    when the incident was read with them, else in one query."""
    from ops.models import Incident

    annotations = _presence_annotations()
    if all(hasattr(incident, name) for name in annotations):
        _memo(incident).update({name: bool(getattr(incident, name)) for name in annotations})
        return
    row = Incident.objects.filter(pk=incident.pk).annotate(**annotations)
    found = row.values(*annotations).first() or {}
    _memo(incident).update({name: bool(value) for name, value in found.items()})


def present(incident: Incident, key: str) -> bool:
    """Whether feature `key` has anything on the incident (from preload, else one query)."""
    from ops.models import Incident

    memo = _memo(incident)
    name = f"has_{key}"
    if name not in memo:
        feature = next(f for f in features() if f.key == key)
        memo[name] = Incident.objects.filter(Q(feature.presence()), pk=incident.pk).exists()
    return memo[name]


def linked_stacks(incident: Incident) -> list[Any]:
    """The incident's linked stacks with their tenants, by name, read once per page (the
    incident's change page has them prefetched)."""
    memo = _memo(incident)
    if "stacks" not in memo:
        cached = getattr(incident, "_prefetched_objects_cache", {}).get("stacks")
        stacks = (
            list(cached) if cached is not None else list(incident.stacks.select_related("tenant"))
        )
        memo["stacks"] = sorted(stacks, key=lambda stack: (stack.stack_name, stack.pk))
    return memo["stacks"]


def remember(incident: Incident, key: str, read: Callable[[], Any]) -> Any:
    """`read()` once per page for this incident (a feature's own row, e.g. its MassFailure)."""
    memo = _memo(incident)
    if key not in memo:
        memo[key] = read()
    return memo[key]
