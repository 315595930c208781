"""Customer updates (issue 16 point 6): from an incident, one e-mail to each affected tenant's
contact, written from an editable CustomerMessageTemplate, queued as Notification rows and
recorded on the timeline.

A template is filled in with string.Template.safe_substitute: only $incident (the public
title, else the title), $status, $tenant, $update (the operator's text) and $status_page are
replaced; nothing else is evaluated and no secret is ever among them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet

from ops import incidents
from ops.models import Incident, IncidentEventKind
from ops.models.notifications import (
    CustomerMessageTemplate,
    DeliveryStatus,
    Notification,
    NotifyEvent,
)
from ops.notifications import delivery
from stacks.models import Stack
from tenants.models import Tenant

SUBJECT_MAX_LENGTH = 250  # filled in, before the tenant's name (Notification.title: 300)
BODY_MAX_LENGTH = 20_000
UPDATE_MAX_LENGTH = 5_000

NO_TEMPLATE = "Message template: choose one of the active templates."
NO_SUBJECT = "Subject: write the e-mail's subject."
NO_BODY = "Message: the body is empty; write what the customers read."
NO_RECIPIENTS = (
    "Recipients: no affected tenant has a contact e-mail. Link the incident to the tenants "
    "(or their stacks) and give each tenant a contact e-mail."
)


@dataclass(frozen=True)
class Draft:
    """What the operator is about to send: the template chosen and the text as edited."""

    template: CustomerMessageTemplate | None
    subject: str
    body: str
    update: str


@dataclass(frozen=True)
class Rendered:
    """The message one tenant's contact receives."""

    tenant: Tenant
    subject: str
    body: str


def status_page_url() -> str:
    return f"{settings.CFADMIN_BASE_URL}/{settings.STATUS_PAGE_PATH}"


def active_templates() -> QuerySet[CustomerMessageTemplate]:
    return CustomerMessageTemplate.objects.filter(active=True)


def affected_tenants(incident: Incident) -> QuerySet[Tenant]:
    """The tenants the incident affects (linked directly or through a linked stack) that have
    a contact e-mail, by slug."""
    through_stacks = Stack.objects.filter(incidents=incident).values("tenant_id")
    linked = Q(pk__in=incident.tenants.values("pk")) | Q(pk__in=through_stacks)
    return Tenant.objects.filter(linked).exclude(contact_email="").order_by("slug")


def variables(incident: Incident, tenant: Tenant | None, update: str) -> dict[str, str]:
    values = {
        "incident": incident.public_name,
        "status": incident.get_status_display(),
        "update": update,
        "status_page": status_page_url(),
    }
    if tenant is not None:
        values["tenant"] = tenant.name
    return values


PLACEHOLDERS = ("incident", "status", "tenant", "update", "status_page")


def unknown_placeholders(text: str) -> list[str]:
    """The $names in `text` that are not filled in (a typo such as $tennant), "$" + name."""
    return [f"${name}" for name in Template(text).get_identifiers() if name not in PLACEHOLDERS]


def check_template(subject: str, body: str) -> None:
    """ValidationError naming the field when a template uses a $name nobody fills in."""
    errors = {
        field: f"{label}: unknown placeholder {', '.join(unknown)}; use "
        + ", ".join(f"${name}" for name in PLACEHOLDERS)
        + " (write $$ for a dollar sign)."
        for field, label, text in (("subject", "Subject", subject), ("body", "Body", body))
        if (unknown := unknown_placeholders(text))
    }
    if errors:
        raise ValidationError(errors)


def fill(text: str, values: Mapping[str, str]) -> str:
    """The text with the known $names replaced; anything else (a "$5", a "$other") kept as is."""
    return Template(text).safe_substitute(values)


def one_line(text: str) -> str:
    # A subject is one header line: line breaks (from a title or the template) are spaces.
    return " ".join(text.split())


def read_draft(form: Mapping[str, str]) -> Draft:
    """The posted draft; the subject and body default to the chosen template's."""
    template_id = form.get("template", "")
    template = (
        active_templates().filter(pk=int(template_id)).first() if template_id.isdigit() else None
    )
    subject = form.get("subject")
    body = form.get("body")
    if template is not None and subject is None and body is None:
        subject, body = template.subject, template.body
    return Draft(
        template,
        (subject or "").strip(),
        (body or "").replace("\r\n", "\n").strip(),
        (form.get("update") or "").replace("\r\n", "\n").strip(),
    )


def render(incident: Incident, draft: Draft, tenant: Tenant) -> Rendered:
    values = variables(incident, tenant, draft.update)
    return Rendered(tenant, one_line(fill(draft.subject, values)), fill(draft.body, values))


def common_subject(incident: Incident, draft: Draft) -> str:
    """The subject as every tenant gets it ($tenant left as is): the timeline quotes it."""
    return one_line(fill(draft.subject, variables(incident, None, draft.update)))


def check(incident: Incident, draft: Draft, tenants: list[Tenant]) -> None:
    """ValidationError naming each field that stops the draft from being sent."""
    errors: dict[str, str] = {}
    if draft.template is None:
        errors["template"] = NO_TEMPLATE
    if not draft.subject:
        errors["subject"] = NO_SUBJECT
    elif len(common_subject(incident, draft)) > SUBJECT_MAX_LENGTH:
        errors["subject"] = f"Subject: at most {SUBJECT_MAX_LENGTH} characters once filled in."
    if not draft.body:
        errors["body"] = NO_BODY
    elif len(draft.body) > BODY_MAX_LENGTH:
        errors["body"] = f"Message: at most {BODY_MAX_LENGTH} characters."
    if len(draft.update) > UPDATE_MAX_LENGTH:
        errors["update"] = f"What to tell them: at most {UPDATE_MAX_LENGTH} characters."
    if not tenants:
        errors["tenants"] = NO_RECIPIENTS
    if errors:
        raise ValidationError(errors)


def preview(incident: Incident, draft: Draft) -> list[Rendered]:
    """The message each affected tenant's contact would receive."""
    return [render(incident, draft, tenant) for tenant in affected_tenants(incident)]


def dedupe_key(incident: Incident, tenant: Tenant, subject: str, body: str) -> str:
    """One key per incident, tenant and message: a second click sends nothing again, a new
    update under the same subject is sent."""
    digest = hashlib.sha256(f"{subject}\n{body}".encode()).hexdigest()[:24]
    return f"customer-update:{incident.pk}:{tenant.pk}:{digest}"


def send(incident: Incident, form: Mapping[str, str], *, actor: Any) -> int:
    """Queue one e-mail per affected tenant contact and record it on the timeline; returns how
    many were queued (0 when each was sent already: a double submit)."""
    draft = read_draft(form)
    with transaction.atomic():
        # Two submits of the same form queue one after the other: the second sees the first's
        # rows and is suppressed as a duplicate (delivery.queue's dedupe).
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        tenants = list(affected_tenants(incident))
        check(incident, draft, tenants)
        queued: list[Notification] = []
        for tenant in tenants:
            message = render(incident, draft, tenant)
            queued.append(
                delivery.queue(
                    event=NotifyEvent.CUSTOMER_UPDATE,
                    title=message.subject[: Notification._meta.get_field("title").max_length],
                    body=message.body,
                    recipient_repr=f"{tenant.name} <{tenant.contact_email}>"[:200],
                    to_address=tenant.contact_email,
                    # The status page's address closes the e-mail unless the text has it.
                    link="" if status_page_url() in message.body else status_page_url(),
                    incident=incident,
                    dedupe_key=dedupe_key(incident, tenant, message.subject, message.body),
                )
            )
        sent = sum(1 for row in queued if row.status != DeliveryStatus.SUPPRESSED)
        if sent:
            subject = common_subject(incident, draft)
            noun = "tenant" if sent == 1 else "tenants"
            incidents.log_action(
                incident,
                IncidentEventKind.CUSTOMER_UPDATE,
                f"Customer update sent to {sent} {noun}: {subject}",
                actor=actor,
            )
    return sent
