"""Public updates: what staff tell customers about an incident on the status page, apart from
its internal notes. The first one puts the incident on the page under a public title."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cfadmin import audit
from ops.incidents import log_action
from ops.models import Incident, IncidentEventKind, PublicStatus, PublicUpdate
from ops.status_page import caching

MESSAGE_MAX_LENGTH = 5_000
PUBLIC_TITLE_MAX_LENGTH = Incident._meta.get_field("public_title").max_length


def _clean(
    status: str, message: str, public_title: str, *, first: bool
) -> tuple[PublicStatus, str, str]:
    """The posted values, or a ValidationError naming each field and its rule."""
    errors: dict[str, str] = {}
    if status not in PublicStatus.values:
        choices = ", ".join(str(label) for label in PublicStatus.labels)
        errors["status"] = f"Status: choose one of {choices}."
    message = (message or "").strip()
    if not message:
        errors["message"] = "Message: required (what customers should know now)."
    elif len(message) > MESSAGE_MAX_LENGTH:
        errors["message"] = f"Message: keep it under {MESSAGE_MAX_LENGTH} characters."
    public_title = (public_title or "").strip()
    if first and not public_title:
        errors["public_title"] = (
            "Public title: required the first time an incident goes on the status page "
            "(customers read it instead of the internal title)."
        )
    elif len(public_title) > PUBLIC_TITLE_MAX_LENGTH:
        errors["public_title"] = (
            f"Public title: keep it under {PUBLIC_TITLE_MAX_LENGTH} characters."
        )
    if errors:
        raise ValidationError(errors)
    return PublicStatus(status), message, public_title


def post_update(
    incident: Incident, status: str, message: str, public_title: str = "", *, actor: Any
) -> PublicUpdate:
    """Post a public update. The first one also marks the incident public under
    `public_title` (required then); later a new `public_title` renames it on the page. The
    incident's timeline and the audit trail say what was posted."""
    first = not incident.public
    status, message, public_title = _clean(status, message, public_title, first=first)
    changes: dict[str, Any] = {"public_update": {"status": status.value}}
    with transaction.atomic():
        fields: dict[str, Any] = {}
        if first:
            fields["public"] = True
        if public_title and public_title != incident.public_title:
            fields["public_title"] = public_title
            changes["fields"] = {"public_title": [incident.public_title, public_title]}
        if fields:
            Incident.objects.filter(pk=incident.pk).update(**fields)
            for name, value in fields.items():
                setattr(incident, name, value)
        update = PublicUpdate.objects.create(
            incident=incident,
            status=status,
            message=message,
            posted_by=actor if hasattr(actor, "pk") else None,
            posted_by_repr=audit.actor_label(actor)[:150],
            posted_at=timezone.now(),
        )
        line = f"Public update posted ({status.label}): {message}"
        if first:
            line = f"On the status page as “{incident.public_title}”. {line}"
        elif "public_title" in fields:
            line = f"Public title now “{incident.public_title}”. {line}"
        log_action(incident, IncidentEventKind.PUBLIC_UPDATE, line, actor=actor, changes=changes)
        caching.forget()
    return update


def withdraw(incident: Incident, *, actor: Any) -> None:
    """Take the incident off the status page (published by mistake, or about something
    customers need not follow); its public updates are kept, and a later one puts it back."""
    if not incident.public:
        raise ValidationError("The incident is not on the status page.")
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(public=False)
        incident.public = False
        log_action(
            incident,
            IncidentEventKind.PUBLIC_UPDATE,
            "Taken off the status page.",
            actor=actor,
            changes={"fields": {"public": [True, False]}},
        )
        caching.forget()
