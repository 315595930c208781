"""Helpers the notification tests share: channels, the default rules, opening incidents, and a
stand-in for the worker that runs exactly the jobs delivery queued."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.utils.module_loading import import_string

from ops import incidents
from ops.models import (
    EscalationContact,
    Incident,
    Notification,
    NotificationChannel,
    NotificationRule,
    Severity,
)
from ops.notifications import channels

SEED = "ops.migrations.0020_notification_seed"


def default_rules() -> None:
    """The migration's rules, back if a transactional test flushed them."""
    if not NotificationRule.objects.exists():
        importlib.import_module(SEED).seed(django_apps, None)


def contact(issue_type: str) -> EscalationContact:
    return EscalationContact.objects.get(issue_type=issue_type)


def add_channel(
    owner: EscalationContact | Any, url: str, *, label: str = "", enabled: bool = True
) -> NotificationChannel:
    """A channel of a contact or of a user, its URL stored as the admin stores it."""
    channel = NotificationChannel(label=label, enabled=enabled)
    if isinstance(owner, EscalationContact):
        channel.contact = owner
    else:
        channel.user = owner
    channels.set_url(channel, url)
    channel.save()
    return channel


def open_incident(
    actor: Any,
    *,
    escalation: EscalationContact | None,
    title: str = "Coolify API down",
    severity: str = Severity.SEV1,
    stacks: Iterable[Any] = (),
) -> Incident:
    """An incident opened as the admin's add form opens one, with its stacks and tenants."""
    incident = Incident(title=title, severity=severity, escalation=escalation)
    stacks = list(stacks)

    def save_links() -> None:
        incident.stacks.add(*stacks)
        incident.tenants.add(*{stack.tenant for stack in stacks})

    return incidents.open_incident(incident, actor=actor, save_links=save_links)


def notifications(**filters: Any) -> list[Notification]:
    return list(Notification.objects.filter(**filters).order_by("pk"))


@dataclass
class Worker:
    """The jobs delivery queued (func, pk), run on demand as the worker would run them."""

    queued: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def enqueue(self, func: str, *args: Any, **options: Any) -> None:
        self.queued.append((func, args))

    def run(self) -> list[str]:
        done, self.queued = self.queued, []
        return [import_string(func)(*args) for func, args in done]


def stand_in_worker(monkeypatch: pytest.MonkeyPatch) -> Worker:
    """Delivery's jobs recorded instead of queued to django-q (each test file's `worker`)."""
    worker = Worker()
    monkeypatch.setattr("ops.notifications.delivery.enqueue", worker.enqueue)
    return worker
