"""What other apps add to the stack pages without stacks importing them (apps depend one way:
cfadmin ← tenants ← stacks ← ops). An app registers providers in its AppConfig.ready(); the
stack admin asks them for panels (the stack page), links (an operation's page) and row notes
(lists of stacks, e.g. the tenant page). Providers return data; stacks' templates draw it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from stacks.choices import OperationKind
from stacks.models import Operation, Stack


@dataclass(frozen=True)
class Link:
    """A link with an optional note after it ("3/5 settled") and a badge class for the note."""

    label: str
    url: str
    note: str = ""
    note_class: str = ""


@dataclass(frozen=True)
class Panel:
    """A section of the stack page. `headline` (the open ones) is shown in the live summary at
    the top; `rows` in the panel's own section below (open first); `notice` is a line above
    everything (e.g. "Deploy succeeded — validation run #7")."""

    key: str  # the HTML ids: cf-stack-<key> (summary line), cf-stack-<key>-panel (section)
    title: str
    order: int = 100
    headline_title: str = ""
    headline: tuple[Link, ...] = ()
    headline_empty: str = "none"
    rows: tuple[Link, ...] = ()
    empty: str = "None yet."
    all_link: Link | None = None
    actions: tuple[Link, ...] = ()
    notice: Link | None = None


@dataclass(frozen=True)
class RowNote:
    """A note another app adds to each row of a list of stacks (the tenant page's stacks):
    `annotate` adds what it needs to the queryset (a subquery, never a query per row) and
    `link` reads it back from a row."""

    annotate: Callable[[QuerySet], QuerySet]
    link: Callable[[Stack], Link | None]


PanelProvider = Callable[[Stack, HttpRequest], "Panel | None"]
OperationLinkProvider = Callable[[Operation, HttpRequest], "list[Link]"]


@dataclass
class _Registry:
    panels: list[PanelProvider] = field(default_factory=list)
    operation_links: list[OperationLinkProvider] = field(default_factory=list)
    row_notes: list[RowNote] = field(default_factory=list)


_registry = _Registry()


def _add(providers: list[Any], provider: Any) -> Any:
    if provider not in providers:  # ready() may run twice (tests, autoreload)
        providers.append(provider)
    return provider


def latest_operation(stack: Stack) -> Operation | None:
    """The stack's latest operation, read once per stack object: the page and every provider
    ask for it."""
    if not hasattr(stack, "_latest_operation"):
        stack._latest_operation = stack.operations.first()
    return stack._latest_operation


def register_panel(provider: PanelProvider) -> PanelProvider:
    """provider(stack, request) -> Panel | None (None: nothing to show to this user)."""
    return _add(_registry.panels, provider)


def register_operation_link(provider: OperationLinkProvider) -> OperationLinkProvider:
    """provider(operation, request) -> links shown on the operation's page."""
    return _add(_registry.operation_links, provider)


def register_row_note(note: RowNote) -> RowNote:
    return _add(_registry.row_notes, note)


def panels(stack: Stack, request: HttpRequest) -> list[Panel]:
    found = [panel for provider in _registry.panels if (panel := provider(stack, request))]
    return sorted(found, key=lambda panel: panel.order)


def operation_links(operation: Operation, request: HttpRequest) -> list[Link]:
    return [link for provider in _registry.operation_links for link in provider(operation, request)]


def annotate_rows(queryset: QuerySet) -> QuerySet:
    for note in _registry.row_notes:
        queryset = note.annotate(queryset)
    return queryset


def row_links(stack: Stack) -> list[Link]:
    return [link for note in _registry.row_notes if (link := note.link(stack))]


def containment_panel(stack: Stack, request: HttpRequest) -> Panel | None:
    """An isolated stack says so at the top of its page (issue 15): since when, by which
    operation, and what it refuses until released."""
    if not stack.is_isolated:
        return None
    isolation = stack.operations.filter(kind=OperationKind.ISOLATE).first()
    url = reverse("admin:stacks_operation_change", args=[isolation.pk]) if isolation else ""
    since = "?"
    if stack.contained_at is not None:
        since = timezone.localtime(stack.contained_at).strftime("%Y-%m-%d %H:%M")
    headline = Link(
        f"Isolated since {since}",
        url,
        note="start, restart, redeploy and rotate refused until released",
    )
    rows = (
        (Link(f"{isolation} — {isolation.get_status_display().lower()}", url),) if isolation else ()
    )
    return Panel(
        key="containment",
        title="Containment",
        order=1,
        headline_title="Containment",
        headline=(headline,),
        rows=rows,
        empty="No isolate operation recorded.",
        notice=Link(
            "This stack is isolated (contained): its domains are off in Coolify and it is stopped",
            url,
            note="release it to restore its domains and start it",
            note_class="cf-contained cf-contained-isolated",
        ),
    )
