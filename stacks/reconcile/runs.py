"""Running reconcile: asking for a comparison (once at a time), running and storing it, and
the rules about stored runs (how long they are kept, when an unfinished one is lost)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from cfadmin import audit, jobs
from cfadmin.models import AuditEvent
from cfadmin.queued_once import request_once
from stacks.choices import DriftKind, StackStatus
from stacks.clients.coolify import CoolifyClient
from stacks.clients.coolify_status import interpret
from stacks.clients.errors import ClientError
from stacks.clients.pocketbase import PocketBaseClient
from stacks.models import ReconcileRun, Stack
from stacks.provisioning import get_coolify, get_pocketbase
from stacks.reconcile import stored_drift
from stacks.reconcile.drift import Drift, containers_running, find_drift

logger = logging.getLogger(__name__)

KEEP_RUNS_DAYS = 30

RECONCILE_JOB = "reconcile"
# A requested comparison not done after this long lost its worker: another may be asked for.
REQUEST_STALE_AFTER = timedelta(minutes=10)


def request_reconcile(actor: Any, *, enqueue: Callable[..., None] | None = None) -> AuditEvent:
    """Queue "Reconcile now", unless one asked for earlier is still queued or running
    (AlreadyQueued says by whom and when): each comparison lists every Coolify service."""
    return request_once(
        RECONCILE_JOB,
        actor=actor,
        label="Reconcile",
        served=lambda moment: ReconcileRun.objects.filter(
            started_at__gte=moment, finished_at__isnull=False
        ).exists(),
        queue=lambda: (enqueue or jobs.enqueue)(
            "stacks.tasks.reconcile_task", getattr(actor, "pk", None)
        ),
        stale_after=REQUEST_STALE_AFTER,
    )


def run_reconcile(
    *,
    actor: Any = None,
    note: str = "",
    coolify: CoolifyClient | None = None,
    pocketbase: PocketBaseClient | None = None,
) -> ReconcileRun:
    """Compare now and store the result (also when a remote side cannot be read)."""
    run = ReconcileRun.objects.create(requested_by_repr=audit.actor_label(actor)[:150], note=note)
    try:
        coolify = coolify or get_coolify()
        pocketbase = pocketbase or get_pocketbase()
        services = coolify.list_services()
        records = pocketbase.list_records()
        drift, checked = find_drift(services, records)
        by_uuid = {s.get("uuid"): s for s in services}
        drift = [d for d in drift if not _status_lags(d, by_uuid, coolify)]
    except ClientError as error:
        run.error = str(error)
        logger.warning("reconcile could not compare: %s", run.error)
    except Exception as error:  # a report must end, even on a bug or odd data
        run.error = f"{type(error).__name__} while comparing; the worker log has the details."
        logger.exception("reconcile failed")
    else:
        run.drift = [d.as_dict() for d in drift]
        run.stacks_checked = checked
    run.drift_counts = stored_drift.count_rows(run.drift)
    run.finished_at = timezone.now()
    run.save(update_fields=["error", "drift", "drift_counts", "stacks_checked", "finished_at"])
    ReconcileRun.objects.filter(
        started_at__lt=timezone.now() - timedelta(days=KEEP_RUNS_DAYS)
    ).delete()
    return run


def _status_lags(drift: Drift, services: dict[str, dict[str, Any]], coolify: CoolifyClient) -> bool:
    """A running stack that Coolify calls stopped while its container runs: after a restart
    Coolify reads `exited` until its next container check (StartService stops first), so this
    is the status lagging, not drift. One call, only for such a row."""
    if drift.kind != DriftKind.SERVICE_STATUS or drift.stack_id is None:
        return False
    service = services.get(drift.service_uuid)
    stack = Stack.objects.select_related("tenant").filter(pk=drift.stack_id).first()
    if service is None or stack is None or stack.status != StackStatus.RUNNING:
        return False
    if not interpret(service.get("status")).stopped:
        return False
    return containers_running(coolify, stack, drift.service_uuid) is True


# A comparison unfinished after this long lost its worker.
UNFINISHED_AFTER = timedelta(minutes=10)


def is_lost(run: ReconcileRun) -> bool:
    """A run that never finished and never will: its worker died (or was stopped)."""
    return run.finished_at is None and timezone.now() - run.started_at > UNFINISHED_AFTER


def comparison_running() -> bool:
    """Whether a comparison started recently and has not finished yet."""
    return ReconcileRun.objects.filter(
        finished_at__isnull=True, started_at__gte=timezone.now() - UNFINISHED_AFTER
    ).exists()
