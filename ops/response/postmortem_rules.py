"""Writing an incident's postmortem: its sections and follow-ups, only once the incident is
resolved. Every change is a timeline line (IncidentEventKind.POSTMORTEM) and an audit event."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date

from cfadmin import audit
from ops import incidents
from ops.incident_actions import owner_choices, posted_id
from ops.models import Incident, IncidentEventKind
from ops.models.postmortem import POSTMORTEM_SECTIONS, Postmortem, PostmortemFollowUp

NOT_RESOLVED = (
    "The postmortem is written once the incident is resolved: resolve it first (it stays "
    "editable afterwards)."
)
# What the audit keeps of a changed section (the postmortem itself keeps all of it).
AUDIT_TEXT_MAX = 2_000


def require_resolved(incident: Incident) -> None:
    if not incident.is_resolved:
        raise ValidationError(NOT_RESOLVED)


def _record(incident: Incident, message: str, *, actor: Any, changes: dict[str, Any]) -> None:
    incidents.log_action(
        incident, IncidentEventKind.POSTMORTEM, message, actor=actor, changes=changes
    )


def save_sections(incident: Incident, form: Mapping[str, str], *, actor: Any) -> list[str]:
    """Write the postmortem's sections from the posted form (a section not posted stays as it
    is); returns the headings of the sections changed ([] when none did: nothing recorded)."""
    require_resolved(incident)
    posted: dict[str, str] = {}
    for name, heading in POSTMORTEM_SECTIONS:
        if name in form:
            text = (form.get(name) or "").strip()
            if len(text) > incidents.NOTE_MAX_LENGTH:
                raise ValidationError(
                    {name: f"{heading}: keep it under {incidents.NOTE_MAX_LENGTH} characters."}
                )
            posted[name] = text
    with transaction.atomic():
        postmortem, _ = Postmortem.objects.select_for_update().get_or_create(incident=incident)
        changed = {
            name: [getattr(postmortem, name)[:AUDIT_TEXT_MAX], text[:AUDIT_TEXT_MAX]]
            for name, text in posted.items()
            if getattr(postmortem, name) != text
        }
        if not changed:
            return []
        for name in changed:
            setattr(postmortem, name, posted[name])
        postmortem.updated_at = timezone.now()
        postmortem.updated_by = actor if hasattr(actor, "pk") else None
        postmortem.updated_by_repr = audit.actor_label(actor)[:150]
        postmortem.save()
        headings = [heading for name, heading in POSTMORTEM_SECTIONS if name in changed]
        _record(
            incident,
            "Postmortem: wrote " + ", ".join(heading.lower() for heading in headings),
            actor=actor,
            changes={"fields": changed},
        )
    return headings


def _due(text: str) -> date:
    try:
        due = parse_date((text or "").strip())
    except ValueError:
        due = None
    if due is None:
        raise ValidationError({"due_on": "Give the follow-up's due date (YYYY-MM-DD)."})
    return due


def add_follow_up(incident: Incident, form: Mapping[str, str], *, actor: Any) -> PostmortemFollowUp:
    """A follow-up of the postmortem: what (text), who (an active staff user who may work
    incidents) and by when (a date)."""
    require_resolved(incident)
    text = " ".join((form.get("text") or "").split())
    if not text:
        raise ValidationError({"text": "Say what is to be done."})
    if len(text) > PostmortemFollowUp._meta.get_field("text").max_length:
        raise ValidationError({"text": "Keep a follow-up under 300 characters."})
    owner = owner_choices().filter(pk=posted_id(form.get("owner"))).first()
    if owner is None:
        raise ValidationError({"owner": "Choose who owns the follow-up (a staff user)."})
    due = _due(form.get("due_on", ""))
    with transaction.atomic():
        postmortem, _ = Postmortem.objects.get_or_create(incident=incident)
        follow_up = PostmortemFollowUp.objects.create(
            postmortem=postmortem,
            text=text,
            owner=owner,
            owner_repr=owner.get_username()[:150],
            due_on=due,
        )
        _record(
            incident,
            f"Postmortem follow-up: {text} (owner {follow_up.owner_repr}, due {due:%Y-%m-%d})",
            actor=actor,
            changes={"follow_up": follow_up.pk, "owner": follow_up.owner_repr, "due": str(due)},
        )
    return follow_up


def set_follow_up_done(
    incident: Incident, form: Mapping[str, str], *, actor: Any
) -> PostmortemFollowUp:
    """Tick a follow-up done (form "done" = "1") or open it again (anything else)."""
    require_resolved(incident)
    follow_up = PostmortemFollowUp.objects.filter(
        pk=posted_id(form.get("follow_up")), postmortem__incident=incident
    ).first()
    if follow_up is None:
        raise ValidationError({"follow_up": "No such follow-up on this incident."})
    done = form.get("done") == "1"
    with transaction.atomic():
        changed = PostmortemFollowUp.objects.filter(pk=follow_up.pk, done=not done).update(
            done=done, done_at=timezone.now() if done else None
        )
        if not changed:
            raise ValidationError(
                f"The follow-up is already {'done' if done else 'open'}; reload the page."
            )
        follow_up.refresh_from_db()
        _record(
            incident,
            f"Postmortem follow-up {'done' if done else 'reopened'}: {follow_up.text}",
            actor=actor,
            changes={"follow_up": follow_up.pk, "done": [not done, done]},
        )
    return follow_up
