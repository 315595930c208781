"""Background operations handed to the workers a few at a time, oldest first (issue 17).

A rollout or a bulk action by query queues thousands of operations at once. Handed to the
broker all together, they would sit in front of every operation a person asks for afterwards,
and their Coolify calls would use up the shared budget. So a background operation is created
queued but not handed over (`dispatched_at` empty); `dispatch_background` hands over the oldest
ones while fewer than BACKGROUND_OPERATIONS_IN_FLIGHT background ones are in flight. It runs
every minute (a schedule), after each operation ends (the runner) and after background
operations are requested; an operation a person asks for is handed over at once and only
waits behind those few.

Several workers may dispatch at once. Each dispatched operation takes one of the cap's places
(`dispatch_slot`, unique among the operations in flight: a database constraint) in the same
conditional UPDATE that stamps `dispatched_at`, so the cap holds whatever the race, and an
operation is handed over once.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from stacks.choices import OperationStatus
from stacks.models import Operation

# Rounds of (read the free places, claim) per call: a round lost to another dispatcher is
# tried again with fresh counts, a few times; what is left waits for the next call.
ROUNDS = 4


def dispatch_background(now: datetime | None = None, *, cap: int | None = None) -> int:
    """Hand waiting background operations to the workers (after the commit), oldest first,
    while fewer than `cap` (BACKGROUND_OPERATIONS_IN_FLIGHT) are in flight; returns how many.
    One query when nothing waits."""
    waiting = Operation.objects.awaiting_dispatch()
    if not waiting.exists():
        return 0
    cap = settings.BACKGROUND_OPERATIONS_IN_FLIGHT if cap is None else cap
    handed = 0
    for _ in range(ROUNDS):
        in_flight = Operation.objects.background_in_flight()
        held = list(in_flight.values_list("dispatch_slot", flat=True))
        free = [slot for slot in range(1, cap + 1) if slot not in held][: max(0, cap - len(held))]
        if not free:
            break
        oldest = list(
            waiting.order_by("requested_at", "id").values_list("pk", flat=True)[: len(free)]
        )
        if not oldest:
            break
        claimed = 0
        for slot, pk in zip(free, oldest, strict=False):
            # Stamped when claimed, not when this call began: another dispatcher may have
            # claimed, or an operation freed its place, in between; `dispatched_at` must keep
            # the order of the claims and come after the end that freed the place.
            if _claim(pk, slot, now or timezone.now()):
                _enqueue(pk)
                claimed += 1
        handed += claimed
        if claimed == len(oldest):  # no race lost: nothing more to do now
            break
    return handed


def _claim(pk: int, slot: int, now: datetime) -> bool:
    """Take place `slot` for operation `pk` if it still waits; False if another dispatcher
    took the operation or the place first."""
    try:
        with transaction.atomic():  # a savepoint: a lost race must not break the caller's
            return bool(
                Operation.objects.filter(
                    pk=pk,
                    background=True,
                    status=OperationStatus.QUEUED,
                    dispatched_at__isnull=True,
                ).update(dispatched_at=now, dispatch_slot=slot, enqueued_at=now, enqueue_count=1)
            )
    except IntegrityError:  # the place is another operation's (one_background_operation_per_slot)
        return False


def _enqueue(pk: int) -> None:
    from stacks.services.operations import enqueue_operation  # late: that module imports this

    enqueue_operation(pk)


def dispatch_soon() -> None:
    """Dispatch once the current transaction commits (at once outside one)."""
    transaction.on_commit(dispatch_background)


def dispatch_task() -> int:
    """The one-minute schedule's entry (stacks.schedules)."""
    return dispatch_background()


def background_counts() -> dict[str, int]:
    """Background operations waiting to be handed over, and handed over and not finished."""
    return {
        "waiting": Operation.objects.awaiting_dispatch().count(),
        "in_flight": Operation.objects.background_in_flight().count(),
    }
