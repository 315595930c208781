"""The PocketBase outbox: a stack's agent_stacks record changes first as a row, then in PocketBase.

Every change of a record (a status after an operation, an error, a delete) is written as a
`PocketBaseOutboxEntry` in the same transaction as the change in cfadmin, then delivered: at
once by whoever made the change, and — when PocketBase does not answer — later, by the worker's
maintenance loop and the one-minute schedule, with exponential back-off. So a PocketBase outage
loses nothing and never makes a running stack `error`.

Order: a record's pending entries are delivered together, by writing the newest of them (an
upsert sets the whole record; a delete is the whole story), so an older state never lands after
a newer one. A drain leases a record's pending entries before it writes (a conditional UPDATE),
so two workers never deliver one record at once (a worker killed while delivering holds them
until the lease ends); records are taken in the order of their oldest pending entry. Writes are
idempotent (upsert by tenant and stack name; a delete of a record already gone is done), so
delivering twice after a crash is harmless.

One record's entries are written by one writer at a time (one operation in flight per stack),
so their sequence is the order of the changes.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Max, Min, Q, QuerySet
from django.utils import timezone

from cfadmin.jobs import enqueue
from stacks.choices import OperationKind, OutboxAction, OutboxState, StackStatus
from stacks.clients.errors import BadRequest, ClientError, ConnectionFailed, ValidationFailed
from stacks.clients.pocketbase import PocketBaseClient
from stacks.models import PocketBaseOutboxEntry, Stack
from stacks.remote.clients import get_remote
from stacks.remote.records import pocketbase_record

logger = logging.getLogger(__name__)

Entry = PocketBaseOutboxEntry
KEEP_DELIVERED_DAYS = 30


# --- what is written --------------------------------------------------------------------------


def queue_upsert(stack: Stack, status: str) -> PocketBaseOutboxEntry:
    """Record that the stack's record must say `status`. Call it in the transaction that makes
    the change, then `deliver_record()` after the commit."""
    return Entry.objects.create(
        stack=stack,
        tenant_slug=stack.tenant.slug,
        stack_name=stack.stack_name,
        action=OutboxAction.UPSERT,
        record=pocketbase_record(stack, status),
        record_id=stack.pocketbase_id,
    )


def queue_delete(stack: Stack) -> PocketBaseOutboxEntry:
    """Record that the stack's record must go; the entry keeps the key and the known id, so it
    is delivered whatever happens to the stack row."""
    return Entry.objects.create(
        stack=stack,
        tenant_slug=stack.tenant.slug,
        stack_name=stack.stack_name,
        action=OutboxAction.DELETE,
        record_id=stack.pocketbase_id,
    )


def has_record(stack: Stack) -> bool:
    """PocketBase has a record for the stack, or will once its pending entries are delivered."""
    if stack.pocketbase_id:
        return True
    return (
        Entry.objects.pending()
        .for_record(stack.tenant.slug, stack.stack_name)
        .filter(action=OutboxAction.UPSERT)
        .exists()
    )


def queue_error(stack: Stack, *, kind: str) -> PocketBaseOutboxEntry | None:
    """The runbook expects status=error in PocketBase after a failure. None when there is
    nothing to say: the stack is a tombstone, or a failed delete never had a record (a record is
    never made for a stack that is being removed)."""
    if stack.status == StackStatus.DELETED:
        return None
    if kind == OperationKind.DELETE and not has_record(stack):
        return None
    return queue_upsert(stack, StackStatus.ERROR)


# --- delivering -------------------------------------------------------------------------------


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    NOTHING = "nothing"  # no pending entry for the record
    BUSY = "busy"  # another worker holds the record's entries
    DEFERRED = "deferred"  # PocketBase did not take it now: retried later
    REJECTED = "rejected"  # PocketBase refused it as it stands (400/422)


@dataclass(frozen=True)
class Delivery:
    key: tuple[str, str]
    outcome: Outcome
    entry_id: int | None = None
    action: str = ""
    record_id: str = ""
    changed: bool = True  # False: the record was already as wanted (a delete of a gone record)
    detail: str = ""
    error: ClientError | None = None
    superseded: int = 0

    @property
    def unreachable(self) -> bool:
        return isinstance(self.error, ConnectionFailed)


def retry_delay(attempts: int, *, base: float | None = None, cap: float | None = None) -> float:
    """Seconds to wait after `attempts` failed tries: base, twice that, four times… up to cap."""
    base = settings.POCKETBASE_OUTBOX_RETRY_BASE if base is None else base
    cap = settings.POCKETBASE_OUTBOX_RETRY_MAX if cap is None else cap
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def lease_seconds() -> float:
    """Longer than one delivery can take: at most four calls (a login, a look-up, two deletes),
    each with the client's four tries and up to 3.5 s of back-off (stacks/clients/http.py). A
    worker killed while delivering holds its record this long; then another one takes over."""
    return settings.POCKETBASE_TIMEOUT * 16 + 15


def is_rejection(error: ClientError) -> bool:
    """PocketBase refused the record as it stands: the same write would be refused again."""
    return isinstance(error, (BadRequest, ValidationFailed))


def _claim(key: tuple[str, str]) -> str | None:
    """Lease the record's pending entries; None if it has none or another worker has them."""
    now = timezone.now()
    token = uuid.uuid4().hex
    pending = Entry.objects.pending().for_record(*key)
    free = Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    if not pending.filter(free).update(
        lease_token=token, leased_until=now + timedelta(seconds=lease_seconds())
    ):
        return None
    newest_mine = pending.filter(lease_token=token).aggregate(newest=Max("id"))["newest"]
    if pending.filter(id__lte=newest_mine).exclude(lease_token=token).exists():
        _release(token)  # an older entry is another worker's: it delivers first
        return None
    return token


def _release(token: str, **fields: Any) -> None:
    Entry.objects.filter(lease_token=token).update(lease_token="", leased_until=None, **fields)


def deliver_record(tenant_slug: str, stack_name: str, pocketbase: PocketBaseClient) -> Delivery:
    """Deliver one record's pending entries now (the newest of them), whatever their back-off."""
    key = (tenant_slug, stack_name)
    token = _claim(key)
    if token is None:
        busy = Entry.objects.pending().for_record(*key).exists()
        return Delivery(key, Outcome.BUSY if busy else Outcome.NOTHING)
    entries = list(Entry.objects.filter(lease_token=token).order_by("id"))
    return _deliver(key, token, entries, pocketbase)


def _deliver(
    key: tuple[str, str], token: str, entries: list[Entry], pocketbase: PocketBaseClient
) -> Delivery:
    latest = entries[-1]
    now = timezone.now()
    try:
        record_id, changed, detail = _write(latest, pocketbase)
    except ClientError as error:
        if is_rejection(error):
            return _reject(key, token, latest, error)
        return _defer(key, token, entries, error)
    except BaseException:  # a bug, or the task's timeout: give the record back at once
        _release(token)
        raise
    Entry.objects.filter(pk=latest.pk).update(
        state=OutboxState.DELIVERED,
        delivered_at=now,
        last_attempt_at=now,
        attempts=F("attempts") + 1,
        record_id=record_id,
        last_error="",
        lease_token="",
        leased_until=None,
    )
    superseded = Entry.objects.filter(lease_token=token).count()
    _release(token, state=OutboxState.SUPERSEDED)
    # A refused older state is history once a newer one is in.
    Entry.objects.for_record(*key).filter(state=OutboxState.REJECTED, id__lt=latest.pk).update(
        state=OutboxState.SUPERSEDED
    )
    if latest.action == OutboxAction.UPSERT and latest.stack_id is not None:
        # Not through save(): updated_at says when the stack changed, not its bookkeeping.
        Stack.objects.filter(pk=latest.stack_id).exclude(pocketbase_id=record_id).update(
            pocketbase_id=record_id
        )
    return Delivery(
        key,
        Outcome.DELIVERED,
        latest.pk,
        latest.action,
        record_id,
        changed,
        detail,
        superseded=superseded,
    )


def _write(entry: Entry, pocketbase: PocketBaseClient) -> tuple[str, bool, str]:
    """Make PocketBase agree with the entry; (record id, whether it changed, what was done)."""
    if entry.action == OutboxAction.UPSERT:
        saved = pocketbase.upsert_record(entry.record)
        return saved["id"], True, f"record {saved['id']} status {entry.record.get('status')}"
    if entry.record_id and pocketbase.delete_record(entry.record_id):
        return entry.record_id, True, f"deleted record {entry.record_id}"
    # Not known, or gone already: whatever record the key has now goes (nothing newer for this
    # key can be in PocketBase: it would be a later entry, delivered after this one).
    found = pocketbase.find_record(entry.tenant_slug, entry.stack_name)
    if found is not None and pocketbase.delete_record(found["id"]):
        return found["id"], True, f"deleted record {found['id']}"
    return entry.record_id, False, "no PocketBase record (already gone)"


def _reject(key: tuple[str, str], token: str, latest: Entry, error: ClientError) -> Delivery:
    now = timezone.now()
    logger.warning("PocketBase refused the record of %s/%s: %s", *key, error)
    Entry.objects.filter(pk=latest.pk).update(
        state=OutboxState.REJECTED,
        last_attempt_at=now,
        attempts=F("attempts") + 1,
        last_error=str(error)[:4000],
        lease_token="",
        leased_until=None,
    )
    superseded = Entry.objects.filter(lease_token=token).count()
    _release(token, state=OutboxState.SUPERSEDED)
    return Delivery(
        key, Outcome.REJECTED, latest.pk, latest.action, error=error, superseded=superseded
    )


def _defer(key: tuple[str, str], token: str, entries: list[Entry], error: ClientError) -> Delivery:
    """Keep the entries for later: every one of them waits the record's back-off."""
    now = timezone.now()
    attempts = max(e.attempts for e in entries) + 1
    _release(
        token,
        attempts=attempts,
        last_attempt_at=now,
        next_attempt_at=now + timedelta(seconds=retry_delay(attempts)),
        last_error=str(error)[:4000],
    )
    latest = entries[-1]
    return Delivery(key, Outcome.DEFERRED, latest.pk, latest.action, error=error)


@dataclass
class DrainReport:
    delivered: list[int] = field(default_factory=list)  # entry ids, in the order written
    superseded: int = 0
    deferred: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    busy: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "superseded": self.superseded,
            "deferred": [f"{t}/{s}" for t, s in self.deferred],
            "rejected": self.rejected,
            "busy": self.busy,
        }


def due_records(now: datetime | None = None, limit: int = 500) -> list[tuple[str, str]]:
    """Records with a pending entry due now, in the order of their oldest pending entry."""
    rows = (
        Entry.objects.pending()
        .filter(next_attempt_at__lte=now or timezone.now())
        .values("tenant_slug", "stack_name")
        .annotate(first=Min("id"))
        .order_by("first")[:limit]
    )
    return [(row["tenant_slug"], row["stack_name"]) for row in rows]


def drain(
    pocketbase: PocketBaseClient | None = None, *, now: datetime | None = None, limit: int = 500
) -> DrainReport:
    """Deliver every record whose entries are due. When PocketBase cannot be reached, the rest
    wait their back-off without being tried (one refused connection says it for all)."""
    report = DrainReport()
    due = due_records(now, limit)
    if due:
        if pocketbase is None:
            pocketbase = get_remote().pocketbase
        unreachable: ClientError | None = None
        for key in due:
            if unreachable is not None:
                delivery = _defer_without_trying(key, unreachable)
            else:
                delivery = deliver_record(*key, pocketbase)
            _count(report, delivery)
            if delivery.unreachable:
                unreachable = delivery.error
    _prune(now)
    return report


def _defer_without_trying(key: tuple[str, str], error: ClientError) -> Delivery:
    token = _claim(key)
    if token is None:
        return Delivery(key, Outcome.BUSY)
    return _defer(key, token, list(Entry.objects.filter(lease_token=token).order_by("id")), error)


def _count(report: DrainReport, delivery: Delivery) -> None:
    report.superseded += delivery.superseded
    if delivery.outcome == Outcome.DELIVERED:
        report.delivered.append(delivery.entry_id)
    elif delivery.outcome == Outcome.DEFERRED:
        report.deferred.append(delivery.key)
    elif delivery.outcome == Outcome.REJECTED:
        report.rejected.append(delivery.entry_id)
    elif delivery.outcome == Outcome.BUSY:
        report.busy += 1


def _prune(now: datetime | None) -> None:
    cutoff = (now or timezone.now()) - timedelta(days=KEEP_DELIVERED_DAYS)
    Entry.objects.filter(
        state__in=[OutboxState.DELIVERED, OutboxState.SUPERSEDED], created_at__lt=cutoff
    ).delete()


def request_drain() -> None:
    """Queue a drain once the current transaction commits (for changes made in a request)."""
    enqueue("stacks.tasks.drain_pocketbase_outbox_task", task_name="pocketbase-outbox")


def deliver_soon(entry: PocketBaseOutboxEntry | None, pocketbase: PocketBaseClient | None) -> None:
    """Best effort, after the commit: deliver now if a client is at hand, else queue a drain.
    Never raises: whatever is not delivered stays in the outbox and is retried."""
    if entry is None:
        return
    if pocketbase is None:
        request_drain()
        return
    try:
        delivery = deliver_record(entry.tenant_slug, entry.stack_name, pocketbase)
    except Exception:  # the outbox keeps it; the drain tries again
        logger.exception("PocketBase record of %s/%s not delivered", *entry.key)
        return
    if delivery.error is not None:
        logger.warning(
            "PocketBase record of %s/%s %s: %s", *entry.key, delivery.outcome.value, delivery.error
        )


# --- what the admin shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class SyncState:
    """A stack's record on its way to PocketBase, for its page."""

    pending: int
    since: datetime | None
    attempts: int
    last_error: str
    next_attempt_at: datetime | None
    rejected: str  # PocketBase's refusal of the stack's newest record, if it refused it

    @property
    def in_sync(self) -> bool:
        return not self.pending and not self.rejected


def sync_state(stack: Stack) -> SyncState:
    # One read of what is not delivered (pending and refused entries: the `outbox_due` index).
    waiting = list(
        Entry.objects.filter(
            stack=stack, state__in=[OutboxState.PENDING, OutboxState.REJECTED]
        ).order_by("id")
    )
    pending = [entry for entry in waiting if entry.state == OutboxState.PENDING]
    rejected = next((e for e in reversed(waiting) if e.state == OutboxState.REJECTED), None)
    return SyncState(
        pending=len(pending),
        since=pending[0].created_at if pending else None,
        attempts=max((e.attempts for e in pending), default=0),
        last_error=next((e.last_error for e in reversed(pending) if e.last_error), ""),
        next_attempt_at=max((e.next_attempt_at for e in pending), default=None),
        rejected=rejected.last_error if rejected is not None else "",
    )


def stacks_with(state: str) -> Q:
    """For filtering stacks: it has an outbox entry in `state` (pending, rejected). An IN over
    the few entries in that state (the `outbox_due` index), not a look-up per stack: SQLite
    would run a correlated EXISTS for each of 10,000 stacks."""
    return Q(pk__in=Entry.objects.filter(state=state, stack__isnull=False).values("stack_id"))


def stack_counts() -> dict[str, int]:
    """How many stacks have a record PocketBase has not taken yet (`pending`) and one it refused
    (`refused`), in one query that reads only those entries (the `outbox_due` index), never
    every stack."""
    waiting = Entry.objects.filter(
        state__in=[OutboxState.PENDING, OutboxState.REJECTED], stack__isnull=False
    )
    return waiting.aggregate(
        pending=Count("stack", distinct=True, filter=Q(state=OutboxState.PENDING)),
        refused=Count("stack", distinct=True, filter=Q(state=OutboxState.REJECTED)),
    )


def pending_records() -> QuerySet:
    """(tenant, stack name) of every record with an undelivered change (reconcile skips them)."""
    return Entry.objects.pending().values_list("tenant_slug", "stack_name").distinct()
