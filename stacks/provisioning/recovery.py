"""No operation stays queued or running forever, whatever happens to its task or its worker.

The broker is not trusted to deliver: django-q2's ORM broker hands a task taken by a worker that
died to another one only after Q_TIMEOUT + 120 s, and its Redis broker (BLPOP) never does. So:

- a running operation whose heartbeat stopped (its worker died) is queued again, at most
  PROVISION_MAX_ATTEMPTS times, then failed;
- a queued operation no worker took (the enqueue failed after the commit, or a worker died
  between taking the task and claiming the row) is queued again after
  PROVISION_QUEUED_STALE_AFTER, the wait doubling each time (a long queue is not a lost task),
  and failed after PROVISION_QUEUED_MAX_ENQUEUES times. A background operation counts from
  when it was dispatched (stacks.services.dispatch): one still waiting for its turn was never
  handed over, so nothing of it is lost, and it is left to the dispatcher.

Queueing again may leave two tasks for one operation; the claim (a conditional UPDATE queued →
running) lets one of them run it and makes the other a no-op. This runs every minute (a
django-q2 schedule) and in every worker process when it starts and every
PROVISION_RECOVERY_INTERVAL seconds (so a restarted worker cluster recovers on its own), with
the PocketBase outbox's drain beside it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.timesince import timesince

from cfadmin import audit
from cfadmin.models import AuditAction
from stacks.choices import OperationStatus, StackStatus
from stacks.clients.errors import ClientError
from stacks.clients.pocketbase import PocketBaseClient
from stacks.models import Operation, PocketBaseOutboxEntry
from stacks.remote import get_pocketbase, get_remote
from stacks.remote import outbox as pocketbase_outbox

logger = logging.getLogger(__name__)
NBSP = "\xa0"  # timesince() joins number and unit with one; messages are plain text


def queued_wait(stale_after: float, enqueue_count: int) -> float:
    """How long the `enqueue_count`-th task of an operation may wait before it counts as lost:
    the threshold, doubled for each time it was queued already."""
    return stale_after * 2 ** max(0, enqueue_count - 1)


def recover_stale_operations(
    *,
    enqueue: Callable[[int], None],
    stale_after: float | None = None,
    max_attempts: int | None = None,
    queued_stale_after: float | None = None,
    max_enqueues: int | None = None,
    pocketbase: PocketBaseClient | None = None,
) -> dict[str, list[int]]:
    """Queue again (`enqueue(pk)`, after the commit) or fail every operation that is stuck;
    returns the ids of both. Safe to run in several processes at once: each move is a
    conditional UPDATE that only one of them wins."""
    now = timezone.now()
    report: dict[str, list[int]] = {"requeued": [], "failed": []}
    _recover_running(now, enqueue, report, stale_after, max_attempts, pocketbase)
    _recover_queued(now, enqueue, report, queued_stale_after, max_enqueues, pocketbase)
    return report


def _recover_running(
    now: datetime,
    enqueue: Callable[[int], None],
    report: dict[str, list[int]],
    stale_after: float | None,
    max_attempts: int | None,
    pocketbase: PocketBaseClient | None,
) -> None:
    """Running operations whose worker died (no heartbeat): resumed, or failed after N tries."""
    stale_after = settings.PROVISION_STALE_AFTER if stale_after is None else stale_after
    max_attempts = settings.PROVISION_MAX_ATTEMPTS if max_attempts is None else max_attempts
    cutoff = now - timedelta(seconds=stale_after)
    stale = Operation.objects.filter(status=OperationStatus.RUNNING, heartbeat_at__lt=cutoff)
    for operation in stale.select_related("stack__tenant"):
        still_stale = Q(pk=operation.pk, status=OperationStatus.RUNNING, heartbeat_at__lt=cutoff)
        if operation.attempts < max_attempts:
            moved = Operation.objects.filter(still_stale).update(
                status=OperationStatus.QUEUED, enqueued_at=now, enqueue_count=1
            )
            if moved:
                enqueue(operation.pk)  # queues after commit (cfadmin.jobs.enqueue)
                report["requeued"].append(operation.pk)
            continue
        message = (
            f"The worker stopped during step '{operation.current_step or '?'}' "
            f"{operation.attempts} times. Next: check the worker's logs, then retry."
        )
        if fail_operation(operation, still_stale, "worker_lost", message, pocketbase=pocketbase):
            report["failed"].append(operation.pk)


def _recover_queued(
    now: datetime,
    enqueue: Callable[[int], None],
    report: dict[str, list[int]],
    stale_after: float | None,
    max_enqueues: int | None,
    pocketbase: PocketBaseClient | None,
) -> None:
    """Queued operations no worker took: queued again with a doubling wait, then failed."""
    stale_after = settings.PROVISION_QUEUED_STALE_AFTER if stale_after is None else stale_after
    max_enqueues = settings.PROVISION_QUEUED_MAX_ENQUEUES if max_enqueues is None else max_enqueues
    waiting = Operation.objects.filter(
        ~Q(background=True, dispatched_at__isnull=True),  # held for the dispatcher
        status=OperationStatus.QUEUED,
        enqueued_at__lt=now - timedelta(seconds=stale_after),
    )
    for operation in waiting.select_related("stack__tenant"):
        waited = now - operation.enqueued_at
        if waited < timedelta(seconds=queued_wait(stale_after, operation.enqueue_count)):
            continue
        unchanged = Q(
            pk=operation.pk, status=OperationStatus.QUEUED, enqueued_at=operation.enqueued_at
        )
        if operation.enqueue_count < max_enqueues:
            moved = Operation.objects.filter(unchanged).update(
                enqueued_at=now, enqueue_count=F("enqueue_count") + 1
            )
            if moved:
                enqueue(operation.pk)
                report["requeued"].append(operation.pk)
            continue
        message = (
            f"It was queued {operation.enqueue_count} times and no worker took it (the last "
            f"time {timesince(operation.enqueued_at, now).replace(NBSP, ' ')} ago). Next: check "
            "that the worker "
            "(python manage.py qcluster) runs and uses the same broker as the web (REDIS_URL, "
            "or the database when it is not set), then retry."
        )
        if fail_operation(operation, unchanged, "not_taken", message, pocketbase=pocketbase):
            report["failed"].append(operation.pk)


def fail_operation(
    operation: Operation,
    still: Q,
    code: str,
    message: str,
    *,
    pocketbase: PocketBaseClient | None = None,
) -> bool:
    """Fail the operation if `still` holds (a conditional UPDATE), as a failed step does: the
    stack goes to error, the trail says why, PocketBase is told. False if the row moved on."""
    with transaction.atomic():
        failed = Operation.objects.filter(still).update(
            status=OperationStatus.FAILED,
            error=message,
            finished_at=timezone.now(),
            result={"ok": False, "error": {"code": code, "message": message}},
        )
        if not failed:
            return False
        stack = operation.stack
        stack.refresh_from_db()
        if stack.status != StackStatus.ERROR and stack.can_transition(StackStatus.ERROR):
            stack.transition_to(StackStatus.ERROR, detail=message)
        audit.record(
            actor=None, action=AuditAction.OPERATION_RESULT, target=operation, message=message
        )
        entry = pocketbase_outbox.queue_error(stack, kind=operation.kind)
    pocketbase_outbox.deliver_soon(entry, pocketbase or _process_pocketbase())
    return True


def _process_pocketbase() -> PocketBaseClient | None:
    try:
        return get_remote().pocketbase
    except ClientError as error:  # not configured here: the outbox keeps the record
        logger.warning("PocketBase not reachable from this process: %s", error)
        return None


# --- running it ---------------------------------------------------------------------------------


def run_maintenance(*, pocketbase: PocketBaseClient | None = None) -> dict[str, Any]:
    """Recovery, then the PocketBase outbox's due records. What the worker loop runs."""
    from stacks.services.operations import enqueue_operation  # late: tests patch it there

    operations = recover_stale_operations(enqueue=enqueue_operation, pocketbase=pocketbase)
    report: dict[str, Any] = {"operations": operations}
    if PocketBaseOutboxEntry.objects.pending().exists():
        try:
            report["pocketbase_outbox"] = pocketbase_outbox.drain(pocketbase).as_dict()
        except ClientError as error:
            logger.warning("PocketBase outbox not drained: %s", error)
    return report


_loop_lock = threading.Lock()
_loop_thread: threading.Thread | None = None


def start_worker_maintenance(sender: Any = None, **kwargs: Any) -> threading.Thread | None:
    """django-q2's `post_spawn` (sent in each worker process as it starts): run the maintenance
    now, then every PROVISION_RECOVERY_INTERVAL seconds, in a daemon thread of that process.

    Why not only the schedule: django-q2's scheduler looks at schedules every 30 s and a schedule
    runs at most once a minute; a worker cluster that was restarted (a release, a crash) would
    leave the operations of the one before it stuck until then. Several processes doing this at
    once is safe (every move is a conditional UPDATE)."""
    global _loop_thread
    interval = settings.PROVISION_RECOVERY_INTERVAL
    if interval <= 0:
        return None
    with _loop_lock:
        if _loop_thread is not None and _loop_thread.is_alive():
            return _loop_thread
        _loop_thread = threading.Thread(
            target=maintenance_loop, args=(interval,), name="cfadmin-maintenance", daemon=True
        )
        _loop_thread.start()
        return _loop_thread


def maintenance_loop(interval: float, stop: threading.Event | None = None) -> None:
    """Run the maintenance until `stop` is set (never, in a worker: the thread is a daemon)."""
    stop = stop or threading.Event()
    pocketbase: PocketBaseClient | None = None
    while not stop.is_set():
        try:
            if pocketbase is None:
                pocketbase = _own_pocketbase()
            run_maintenance(pocketbase=pocketbase)
        except Exception:  # a loop that dies would silently stop recovery: log, go on
            logger.exception("worker maintenance failed; trying again in %ss", interval)
        finally:
            close_old_connections()
        stop.wait(interval)
    if pocketbase is not None:
        pocketbase.close()


def _own_pocketbase() -> PocketBaseClient | None:
    """A client for this thread alone (the worker's own is in use by its tasks)."""
    try:
        return get_pocketbase()
    except ClientError:
        return None
