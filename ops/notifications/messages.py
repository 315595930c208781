"""What a notification says: a title, a plain-text body and a link to cfadmin, per event (the
channel sends the link under the body).

Built only from names, ids, statuses and times cfadmin shows on its pages: never from a
stack's secrets, environment values, operation errors (they may quote a remote answer) or a
channel's URL."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from ops.models import ChecklistRun, EscalationContact, Incident, ItemState, Outage

if TYPE_CHECKING:
    from stacks.models import Operation

# Names listed in a message before "and N more": a page must stay readable on a phone.
MAX_NAMES = 10
MESSAGE_MAX_LENGTH = 300


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    link: str


def absolute(path: str) -> str:
    """A cfadmin path as the link people open (CFADMIN_BASE_URL)."""
    return settings.CFADMIN_BASE_URL + path


def bounded(names: Iterable[str], limit: int = MAX_NAMES, total: int | None = None) -> str:
    """'a, b, c' with at most `limit` names, then 'and N more' (of `total`, when the names are
    only the first ones read)."""
    names = sorted(names)
    total = len(names) if total is None else total
    shown = ", ".join(names[:limit])
    if total > limit:
        shown += f" and {total - limit} more"
    return shown


def first_names(rows: Any, name: Callable[[Any], str]) -> tuple[list[str], int]:
    """The names of the first MAX_NAMES rows (by name) and how many there are: a
    mass-failure incident links thousands of stacks, a message names ten."""
    count = rows.count()
    return [name(row) for row in rows[:MAX_NAMES]], count


def when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"


def incident_link(incident: Incident) -> str:
    return absolute(reverse("admin:ops_incident_change", args=[incident.pk]))


def _incident_lines(
    incident: Incident, contact: EscalationContact | None, respond_by: datetime | None
) -> list[str]:
    tenants, tenant_count = first_names(incident.tenants.order_by("slug"), lambda t: t.slug)
    stacks, stack_count = first_names(
        incident.stacks.select_related("tenant").order_by("tenant__slug", "stack_name"), str
    )
    lines = [
        f"Severity: {incident.severity_level.short_label} "
        f"({incident.get_severity_display().split(' — ', 1)[-1]})",
        f"Status: {incident.get_status_display()}",
    ]
    if contact is not None:
        lines.append(
            f"Issue type: {contact.issue_type} → {contact.team} "
            f"(respond within {contact.response_target})"
        )
    lines += [
        f"Respond by: {when(respond_by)}",
        f"Tenants: {bounded(tenants, total=tenant_count) or 'none linked'}",
        f"Stacks: {bounded(stacks, total=stack_count) or 'none linked'}",
    ]
    return lines


def _incident_message(
    incident: Incident,
    headline: str,
    contact: EscalationContact | None,
    respond_by: datetime | None,
    lead: str = "",
) -> Message:
    """The channel adds the link under the body (ops.notifications.channels.send)."""
    title = f"[{incident.severity_level.short_label}] {headline}: #{incident.pk} {incident.title}"
    lines = ([lead, ""] if lead else []) + _incident_lines(incident, contact, respond_by)
    return Message(title[:300], "\n".join(lines), incident_link(incident))


def incident_opened(incident: Incident) -> Message:
    contact = incident.escalation if incident.escalation_id else None
    return _incident_message(incident, "Incident opened", contact, incident.response_due_at)


def incident_escalated(incident: Incident, contact: EscalationContact) -> Message:
    """The contact's own target, counted from now (as ops.incidents.escalate counts it)."""
    due = contact.response_due(timezone.now())
    lead = f"Escalated to {contact.team} ({contact.issue_type})."
    return _incident_message(incident, f"Escalated to {contact.team}", contact, due, lead)


def incident_reescalated(
    incident: Incident, contact: EscalationContact, missed: datetime | None
) -> Message:
    """Respond by: the paged contact's own target (the incident's next page)."""
    lead = (
        f"Nobody acknowledged this incident by {when(missed)}: {contact.team} "
        f"({contact.issue_type}) is paged next."
    )
    headline = f"Not acknowledged — paging {contact.team}"
    return _incident_message(incident, headline, contact, incident.next_page_at, lead)


def _outage_link(outage: Outage) -> str:
    return absolute(reverse("admin:ops_outage_change", args=[outage.pk]))


def outage_started(outage: Outage) -> Message:
    link = _outage_link(outage)
    body = "\n".join(
        [
            f"Check: {outage.check_name}",
            f"Message: {(outage.first_message or '—')[:MESSAGE_MAX_LENGTH]}",
            f"Down since: {when(outage.started_at)}",
            "",
            f"Dashboard: {absolute(reverse('admin:ops_dashboard'))}",
        ]
    )
    return Message(f"Outage started: {outage.check_name} is down", body, link)


def outage_ended(outage: Outage) -> Message:
    link = _outage_link(outage)
    body = "\n".join(
        [
            f"Check: {outage.check_name}",
            f"Last message while down: {(outage.last_message or '—')[:MESSAGE_MAX_LENGTH]}",
            f"Down from {when(outage.started_at)} to {when(outage.ended_at)} "
            f"({outage.duration_text}, {outage.failures} failed checks)",
        ]
    )
    return Message(
        f"Outage ended: {outage.check_name} is healthy again after {outage.duration_text}",
        body,
        link,
    )


def operation_failed(operation: Operation) -> Message:
    link = absolute(reverse("admin:stacks_operation_change", args=[operation.pk]))
    error = (operation.result or {}).get("error") or {}
    step = str(error.get("step") or operation.current_step or "—")[:100]
    body = "\n".join(
        [
            f"Stack: {operation.stack}",
            f"Operation: {operation.get_kind_display()} #{operation.pk}",
            f"Failed at step: {step}",
            f"Requested by: {operation.requested_by_repr or '—'} at {when(operation.requested_at)}",
            f"Finished: {when(operation.finished_at)}",
            "The operation's page has its steps and error.",
        ]
    )
    title = f"{operation.get_kind_display()} of {operation.stack} failed at step {step}"
    return Message(title[:300], body, link)


def checklist_failed(run: ChecklistRun) -> Message:
    link = absolute(reverse("admin:ops_checklistrun_change", args=[run.pk]))
    failed = [
        f"- {item.step.text} (check: {item.step.get_probe_display()})"
        for item in run.items.select_related("step")
        .filter(state=ItemState.FAILED)
        .exclude(step__probe="")
        .order_by("step__position", "pk")[: MAX_NAMES + 1]
    ]
    if len(failed) > MAX_NAMES:
        failed = [*failed[:MAX_NAMES], "- and more"]
    subject = str(run.stack) if run.stack_id else (run.tenant.slug if run.tenant_id else "")
    lines = [
        f"Checklist: {run.procedure.title} (run #{run.pk})",
        f"Stack: {subject or '—'}",
    ]
    if run.operation_id:
        lines.append(f"Opened by: {run.operation}")
    lines += ["Automatic checks that failed:", *failed]
    title = f"{run.procedure.title} failed" + (f" for {subject}" if subject else "")
    return Message(title[:300], "\n".join(lines), link)
