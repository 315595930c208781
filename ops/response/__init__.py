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
    """

    key: str
    heading: str = ""
    actions: Mapping[str, Action] = field(default_factory=dict)
    forms: Callable[[Incident, Any], tuple[ActionForm, ...]] | None = None
    panel: Callable[[Incident, HttpRequest], Panel | None] | None = None
    urls: Callable[[Any], list[Any]] | None = None
    resolve_blockers: Callable[[Incident, str], list[str]] | None = None


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
