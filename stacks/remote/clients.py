"""Clients for the Coolify and PocketBase of settings, and the pair a worker process keeps open."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from stacks.clients.coolify import CoolifyClient
from stacks.clients.errors import ClientError
from stacks.clients.pacing import BACKGROUND
from stacks.clients.pocketbase import PocketBaseClient
from stacks.remote import budget


@dataclass
class Remote:
    coolify: CoolifyClient
    pocketbase: PocketBaseClient

    def close(self) -> None:
        self.coolify.close()
        self.pocketbase.close()


def get_coolify(**options: Any) -> CoolifyClient:
    """A client for settings' Coolify; `options` (timeout, attempts, priority…) override the
    defaults. Its calls are BACKGROUND in the shared budget unless `priority` or the caller's
    `pacing.calls_as` says INTERACTIVE (the operation runner does, for a person's operation);
    what it learns of the budget goes to the dashboard (stacks.remote.budget)."""
    if not settings.COOLIFY_URL:
        raise ClientError("COOLIFY_URL is not set", service="Coolify")
    client = CoolifyClient(
        settings.COOLIFY_URL,
        settings.COOLIFY_TOKEN,
        **{"timeout": settings.COOLIFY_TIMEOUT, "priority": BACKGROUND, **options},
    )
    budget.watch(client.pacer)
    return client


def get_pocketbase(**options: Any) -> PocketBaseClient:
    """A client for settings' PocketBase; `options` override the defaults."""
    if not settings.POCKETBASE_URL:
        raise ClientError("POCKETBASE_URL is not set", service="PocketBase")
    return PocketBaseClient(
        settings.POCKETBASE_URL,
        email=settings.POCKETBASE_EMAIL,
        password=settings.POCKETBASE_PASSWORD,
        token=settings.POCKETBASE_TOKEN,
        **{"timeout": settings.POCKETBASE_TIMEOUT, **options},
    )


_process_remote: dict[tuple[str, ...], Remote] = {}


def get_remote() -> Remote:
    """The clients of this worker process, kept between operations: connections stay open and
    PocketBase's login is reused (a login per operation costs more than the operation's calls).
    """
    key = (
        settings.COOLIFY_URL,
        settings.COOLIFY_TOKEN,
        settings.POCKETBASE_URL,
        settings.POCKETBASE_EMAIL,
        settings.POCKETBASE_TOKEN,
    )
    remote = _process_remote.get(key)
    if remote is None:
        remote = _process_remote[key] = Remote(coolify=get_coolify(), pocketbase=get_pocketbase())
    return remote
