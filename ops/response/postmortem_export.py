"""An incident as one Markdown document: its facts, the whole timeline, the evidence list with
hashes, the checklist runs with their items' outcomes, and the postmortem. Whatever people typed
is escaped, so a title or note cannot add headings, tables, links or HTML to the document."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone

from ops.models import Incident, ResponseState

# Characters that mean something anywhere in a line (CommonMark/GFM inline syntax and HTML).
_INLINE = re.compile(r"([\\`*_\[\]<>|~&])")
# What makes a block when it starts a line: headings, lists, quotes, rules, setext underlines.
_LINE_START = re.compile(r"^([#+\-=]|\d+(?=[.)]))")


def escape_line(text: str) -> str:
    """One line of user text, literal in Markdown (leading blanks dropped: no code block)."""
    line = _INLINE.sub(r"\\\1", text.strip())
    if match := _LINE_START.match(line):
        if match.group(1).isdigit():  # "1." or "1)" starts a list: escape its dot or paren
            end = match.end()
            return line[:end] + "\\" + line[end:]
        return "\\" + line
    return line


def inline(text: Any) -> str:
    """User text inside a line (a heading, list item or table cell): one line, escaped."""
    return escape_line(" ".join(str(text or "").split()))


def block(text: str, *, empty: str = "_None._") -> str:
    """User text as paragraphs: each line escaped, line breaks kept."""
    lines = [escape_line(line) for line in (text or "").strip().splitlines()]
    if not any(lines):
        return empty
    return "\n".join(f"{line}  " if line else "" for line in lines).rstrip()


def when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _response_target(incident: Incident) -> str:
    state = incident.response_state
    if not state:
        return "no target (no issue type)"
    met = {ResponseState.MET: "met", ResponseState.MISSED: "missed"}.get(state, "not responded")
    return f"{met} ({ResponseState(state).label}, respond by {when(incident.response_due_at)})"


def facts(incident: Incident) -> list[str]:
    contact = incident.escalation
    rows = [
        ("Severity", incident.get_severity_display()),
        ("Issue type", f"{contact.issue_type} ({contact.team})" if contact else "none"),
        ("Status", incident.get_status_display()),
        ("Owner", incident.owner.get_username() if incident.owner_id else "nobody"),
        ("Opened", f"{when(incident.opened_at)} by {incident.opened_by_repr or 'cfadmin'}"),
        ("Acknowledged", when(incident.acknowledged_at)),
        ("Mitigated", when(incident.mitigated_at)),
        ("Resolved", when(incident.resolved_at)),
        ("Duration", incident.duration_text),
        ("Response target", _response_target(incident)),
        ("Tenants", ", ".join(t.slug for t in incident.tenants.order_by("slug")) or "none"),
        ("Stacks", ", ".join(str(s) for s in incident.stacks.select_related("tenant")) or "none"),
        ("Outages", ", ".join(str(o) for o in incident.outages.all()) or "none"),
    ]
    return _table(("Field", "Value"), ((name, inline(value)) for name, value in rows))


def timeline(incident: Incident) -> list[str]:
    events = incident.events.order_by("at", "id")
    lines = [
        f"- {when(e.at)} — {e.get_kind_display()} — {inline(e.actor_repr)}: {inline(e.message)}"
        for e in events
    ]
    return lines or ["_No events._"]


def evidence(incident: Incident) -> list[str]:
    items = list(incident.evidence.select_related("stack__tenant").order_by("captured_at", "pk"))
    if not items:
        return ["_No evidence captured._"]
    rows = (
        (
            str(number),
            when(item.captured_at),
            inline(item.captured_by_repr),
            inline(item.stack or "—"),
            inline(item.get_kind_display()),
            inline(item.title),
            f"`{item.sha256}`" if re.fullmatch(r"[0-9a-f]{64}", item.sha256 or "") else "—",
        )
        for number, item in enumerate(items, start=1)
    )
    return _table(("#", "Captured", "By", "Stack", "Kind", "Title", "SHA-256"), rows)


def checklist_runs(incident: Incident) -> list[str]:
    runs = incident.checklist_runs.select_related("procedure", "stack__tenant").order_by(
        "started_at", "pk"
    )
    lines: list[str] = []
    for run in runs.prefetch_related("items__step"):
        lines += [
            f"### {inline(run.procedure.title)} v{run.procedure.version} (run #{run.pk})",
            "",
            f"{run.get_status_display()}; started {when(run.started_at)} by "
            f"{inline(run.started_by_repr)}"
            + (f", completed {when(run.completed_at)}" if run.completed_at else "")
            + (f"; stack {inline(run.stack)}" if run.stack_id else ""),
            "",
        ]
        for item in sorted(run.items.all(), key=lambda item: item.step.position):
            mark = "x" if item.is_settled else " "
            outcome = item.get_state_display()
            if item.settled_by_repr:
                outcome += f" by {inline(item.settled_by_repr)} at {when(item.settled_at)}"
            reason = item.note or (item.evidence or {}).get("error") or ""
            reason = reason or (item.evidence or {}).get("note", "")
            lines.append(
                f"- [{mark}] {item.step.position}. {inline(item.step.text)} — {outcome}"
                + (f" — {inline(reason)}" if reason else "")
            )
        lines.append("")
    return lines or ["_No checklist runs._"]


def postmortem(incident: Incident) -> list[str]:
    try:
        written = incident.postmortem
    except ObjectDoesNotExist:
        return ["_No postmortem written._"]
    lines = [f"Last edited {when(written.updated_at)} by {inline(written.updated_by_repr)}.", ""]
    for heading, text in written.sections():
        lines += [f"### {heading}", "", block(text), ""]
    follow_ups = list(written.follow_ups.order_by("due_on", "pk"))
    lines += ["### Follow-ups", ""]
    if not follow_ups:
        return [*lines, "_None._"]
    rows = (
        (
            inline(f.text),
            inline(f.owner_repr),
            f"{f.due_on:%Y-%m-%d}" if f.due_on else "—",
            f"done {when(f.done_at)}" if f.done else "open",
        )
        for f in follow_ups
    )
    return lines + _table(("Follow-up", "Owner", "Due", "Done"), rows)


def export_markdown(incident: Incident) -> str:
    """The whole incident as one Markdown document."""
    parts = [
        [f"# Incident #{incident.pk}: {inline(incident.title)}", ""],
        facts(incident),
        ["", "## Summary", "", block(incident.summary)],
        ["", "## Resolution", "", block(incident.resolution, empty="_Not resolved._")],
        ["", "## Timeline", ""],
        timeline(incident),
        ["", "## Evidence", ""],
        evidence(incident),
        ["", "## Checklist runs", ""],
        checklist_runs(incident),
        ["", "## Postmortem", ""],
        postmortem(incident),
        ["", f"_Exported by cfadmin at {when(timezone.now())}._", ""],
    ]
    return "\n".join(line for part in parts for line in part)


def filename(incident: Incident) -> str:
    return f"incident-{incident.pk}-postmortem.md"
