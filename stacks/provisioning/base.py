"""The state one operation's run carries, and the helpers every step shares (liveness, stack
fields, the service it works on)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from stacks.clients.coolify import CoolifyClient
from stacks.clients.pocketbase import PocketBaseClient
from stacks.compose import RenderedStack
from stacks.models import Operation, Stack
from stacks.provisioning.outcomes import StepFailed
from stacks.remote import Remote


@dataclass
class RunnerBase:
    """One run of one operation: its clients, its timing knobs (tests shorten them) and what
    earlier steps of this run found."""

    operation: Operation
    remote: Remote
    poll_interval: float = field(default_factory=lambda: settings.PROVISION_POLL_INTERVAL)
    health_timeout: float = field(default_factory=lambda: settings.PROVISION_HEALTH_TIMEOUT)
    delete_timeout: float = field(default_factory=lambda: settings.PROVISION_DELETE_TIMEOUT)
    step_attempts: int = field(default_factory=lambda: settings.PROVISION_STEP_ATTEMPTS)
    sleep: Callable[[float], None] = time.sleep
    rendered: RenderedStack | None = None
    # When this run asked Coolify to start or restart the service. Coolify only queues the job
    # and reports the old status until it runs (app/Http/Controllers/Api/ServicesController.php
    # action_deploy/action_restart → StartService/RestartService::dispatch), so wait_healthy
    # wants proof it ran.
    start_requested_at: datetime | None = None
    restart_requested_at: datetime | None = None

    @property
    def stack(self) -> Stack:
        return self.operation.stack

    @property
    def coolify(self) -> CoolifyClient:
        return self.remote.coolify

    @property
    def pocketbase(self) -> PocketBaseClient:
        return self.remote.pocketbase

    def _beat(self, **fields: Any) -> None:
        """Record liveness (and `fields`). A bare beat while polling is written at most once
        per tenth of PROVISION_STALE_AFTER: fast polls need not turn into a write each."""
        now = timezone.now()
        last = self.operation.heartbeat_at
        quiet = settings.PROVISION_STALE_AFTER / 10
        if not fields and last is not None and (now - last).total_seconds() < quiet:
            return
        fields["heartbeat_at"] = now
        Operation.objects.filter(pk=self.operation.pk).update(**fields)
        for key, value in fields.items():
            setattr(self.operation, key, value)

    def _save_stack(self, **fields: Any) -> None:
        Stack.objects.filter(pk=self.stack.pk).update(**fields, updated_at=timezone.now())
        for key, value in fields.items():
            setattr(self.stack, key, value)

    def _require_service(self, step: str) -> str:
        uuid = self.stack.coolify_service_uuid
        if not uuid:
            raise StepFailed(
                step,
                "the stack has no Coolify service",
                "Deploy the stack first (its service was never created).",
            )
        return uuid

    def _find_service_by_name(self) -> dict[str, Any] | None:
        project = self.coolify.get_project(self.stack.coolify_project_uuid)
        environment_ids = {e.get("id") for e in project.get("environments", [])}
        return next(
            (
                s
                for s in self.coolify.list_services()
                if s.get("name") == self.stack.stack_name
                and s.get("environment_id") in environment_ids
            ),
            None,
        )
