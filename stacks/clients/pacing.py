"""Pacing calls to a Laravel rate limit from the `X-RateLimit-*` headers of its own answers.

Coolify 4.3.11 throttles its API with Laravel's `throttle:api` (app/Http/Kernel.php, the `api`
middleware group): `Limit::perMinute(config('api.rate_limit'))` — env API_RATE_LIMIT, default
200 (config/api.php) — keyed by the token's user id (app/Providers/RouteServiceProvider.php;
Laravel's middleware priority runs `auth:sanctum` before the throttle, so every token of one
user shares one budget). Illuminate\\Cache\\RateLimiter counts in a fixed window: the first hit
adds a counter and a `:timer` key that both expire 60 s later and are never extended; a request
is refused while the count is at the limit. Illuminate\\Routing\\Middleware\\ThrottleRequests
answers every counted request with `X-RateLimit-Limit` and `X-RateLimit-Remaining` (the count
after that request), and a refused one with 429, `Retry-After` (whole seconds until the window
ends) and `X-RateLimit-Reset`.

The budget is shared by every process using the token (worker processes, the web server), and
cfadmin has no store shared by all of them that is cheaper than the call itself; so each
process paces from the server's own count, seen on every answer:

- plenty left: no wait at all (a single worker at a low rate never waits);
- below `SPREAD_RESERVES` reserves left: the calls left above the reserve are spread over what
  is left of the window;
- at the reserve: wait until the window has certainly ended (its first answer seen by this
  process + 60 s + a margin; or a 429's Retry-After), then go: a new window has the whole budget.

The reserve covers what this process cannot see: every caller (a worker, a thread) has at most
one call in flight decided on a count older than its answer, so a reserve of at least the
number of callers across processes keeps every answer off 429: 5 % of the limit (10 of 200), or
more when more processes share the token (`callers`: Q_WORKERS single-threaded workers plus the
web server's processes, set by stacks.remote.budget.watch). Within a process the calls in flight
are counted exactly. The 429 handling in clients/http.py stays as the safety
net (another user of the same Coolify account, a reserve too small for the process count).

Priority (issue 17): every call is `INTERACTIVE` (an operation a person asked for) or
`BACKGROUND` (background operations — rollouts, bulk actions by query — reconcile, health
checks, probes). A background call keeps a larger reserve for people: `background_share` of the
limit (COOLIFY_BACKGROUND_RESERVE_SHARE, 25 %: 50 of 200) *for the time left in the window* —
50 calls at its start, 25 half-way, none (but the processes' reserve) at its end. So a person's
operation finds at any moment a quarter of the limit's rate still unspent, at once (no queue
in front of it: background calls never spread into its zone), while background work that
nobody competes with gets the whole window, a little at a time towards its end, instead of
leaving a quarter of every window unused (a fleet rollout at 10,000 stacks is bound by these
calls). Where the reserve stops a background call, it goes when the shrinking reserve lets it
(one call per 60 / (limit * share) seconds, 1.2 s at 200), not at the window's end. The rest
of the rules (spread, window's end, 429) are the same for both, each with its own reserve.

How a call's priority is chosen: `calls_as(priority)` (a context variable, so per thread and
task) for the calls made inside it, else the client's own `priority`. The operation runner
wraps each run in `calls_as` from `Operation.background`; every client made by
`stacks.remote.get_coolify` / `get_remote` is BACKGROUND by default, so reconcile, health
checks, probes and anything not marked count as background: only what is known to be a
person's work goes first. The pacer itself defaults to INTERACTIVE (no reserve beyond the
processes' one), as before issue 17.

No Django imports.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0  # Limit::perMinute: the window decays 60 s after its first hit
# The counter's TTL runs from the first hit, before any answer of the window: a little slack.
WINDOW_MARGIN = 0.25
# Retry-After is whole seconds (RateLimiter::availableIn: the `:timer` value, an int timestamp,
# minus the current int time): up to a second short of the counter's real expiry.
RETRY_AFTER_MARGIN = 1.0
RESERVE_SHARE = 0.05  # of the limit, kept for the other processes' calls in flight
RESERVE_MIN = 3
# Below this many reserves left, the calls down to the reserve are spread over the rest of the
# window. Late and short: the budget is the same either way, and a burst finishes more
# operations before the window runs out than a slow trickle shared by all of them.
SPREAD_RESERVES = 2
# Below this limit the reserve would leave (next to) nothing to pace: such a budget is left to
# the 429 handling (Retry-After) alone. Coolify's default is 200; cfadmin's deploy alone takes
# about five calls.
MIN_PACED_LIMIT = 10

INTERACTIVE = "interactive"  # an operation a person asked for
BACKGROUND = "background"  # background operations, reconcile, probes (health checks: interactive)
PRIORITIES = (INTERACTIVE, BACKGROUND)
BACKGROUND_RESERVE_SHARE = 0.25  # of the limit, left by background calls for interactive ones

_priority: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "coolify_call_priority", default=None
)


@contextlib.contextmanager
def calls_as(priority: str) -> Iterator[None]:
    """Every paced call made inside (this thread or task) has `priority`."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {PRIORITIES}, not {priority!r}")
    token = _priority.set(priority)
    try:
        yield
    finally:
        _priority.reset(token)


def call_priority(default: str) -> str:
    """The priority `calls_as` set around this call, else `default` (the client's)."""
    return _priority.get() or default


def reserves(limit: int | None, background_share: float, callers: int = 0) -> tuple[int, int]:
    """(interactive, background) reserves of a limit at a window's start: calls left below
    which calls of that priority wait (`callers`: as RatePacer.callers)."""
    if not limit:
        return 0, 0
    interactive = max(RESERVE_MIN, math.ceil(limit * RESERVE_SHARE), callers)
    return interactive, max(interactive, math.ceil(limit * background_share))


@dataclass(frozen=True)
class BudgetView:
    """What one answer taught a pacer, for whoever shows the budget (stacks.remote.budget)."""

    limit: int
    remaining: int
    resets_in: float | None  # seconds until the window ends at the latest
    rate_limited: bool  # this answer was a 429


@dataclass
class PacingStats:
    """What pacing did in this process: calls sent, calls held back and for how long, 429s."""

    calls: int = 0
    paced_waits: int = 0
    paced_seconds: float = 0.0
    rate_limited: int = 0

    def line(self) -> str:
        return (
            f"pid={os.getpid()} calls={self.calls} paced_waits={self.paced_waits} "
            f"paced_seconds={self.paced_seconds:.1f} rate_limited={self.rate_limited}"
        )


class RatePacer:
    """One rate-limit budget as this process knows it. Thread-safe; one per (URL, token)."""

    def __init__(
        self,
        *,
        name: str = "Coolify",
        clock: Callable[[], float] = time.monotonic,
        reserve: int | None = None,
        background_share: float = BACKGROUND_RESERVE_SHARE,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        # Waits on `clock`'s time: a pacer on a faster clock (tests, the bench) sleeps with
        # its own `sleep`; None: the calling client's.
        self.sleep = sleep
        self.fixed_reserve = reserve
        # Processes that may call with this budget at once (workers and web processes): the
        # processes' reserve is at least that many (each may have one call in flight decided
        # on an older count). Set from the settings by stacks.remote.budget.watch.
        self.callers = 0
        self.background_share = background_share
        # Called (outside the lock) with what each answer with the headers taught: the
        # dashboard's shared view (stacks.remote.budget.watch). Must not raise.
        self.observer: Callable[[BudgetView], None] | None = None
        self.stats = PacingStats()
        self._lock = threading.Lock()
        self.limit: int | None = None
        self.remaining: int | None = None  # lowest count seen in the current window
        self.window_end: float | None = None  # the latest the current window can end
        self.in_flight = 0  # sent (or about to be) and not answered: not in `remaining` yet
        # Per priority: background calls spreading must not push interactive ones back.
        self._last_slot = dict.fromkeys(PRIORITIES, -math.inf)

    # --- the rules -------------------------------------------------------------------------

    def reserve(
        self, limit: int, priority: str = INTERACTIVE, time_left: float | None = None
    ) -> int:
        """Calls left in a window below which calls of `priority` wait; a background call's
        reserve shrinks with the `time_left` in the window (None: a whole window)."""
        base = self.fixed_reserve
        if base is None:
            base = max(RESERVE_MIN, math.ceil(limit * RESERVE_SHARE), self.callers)
        if priority == BACKGROUND:
            kept = limit * self.background_share
            if time_left is not None:
                kept *= min(max(time_left, 0.0), WINDOW_SECONDS) / WINDOW_SECONDS
            return max(base, math.ceil(kept))
        return base

    def _turn_at_reserve(self, left: int, priority: str) -> float:
        """When a call of `priority` stopped by its reserve may go, `left` calls being left:
        an interactive one (or a background one at the processes' reserve) at the window's
        end; a background one once its shrinking reserve is below `left`. Under the lock."""
        assert self.limit is not None and self.window_end is not None
        if priority != BACKGROUND or left <= self.reserve(self.limit) or not self.background_share:
            return self.window_end
        seconds_per_call = WINDOW_SECONDS / (self.limit * self.background_share)
        # At that moment the reserve is left - 1 (the epsilon: float rounding must not make it
        # `left` again, which would send the call to the window's end after all).
        return self.window_end - (left - 1) * seconds_per_call + 1e-6

    def _slot(self, now: float, in_flight: int, priority: str = INTERACTIVE) -> float:
        """When the next call may be sent (`now` if at once). Under the lock."""
        if self.limit is None or self.remaining is None or self.window_end is None:
            return now
        if now >= self.window_end:  # that window is over: the next has the whole budget
            self.remaining = self.window_end = None
            return now
        left = self.remaining - in_flight
        reserve = self.reserve(self.limit, priority, self.window_end - now)
        if left <= reserve:
            return max(now, self._turn_at_reserve(left, priority))
        # The spread zone is as wide as the processes' reserve, above this priority's own. A
        # background call needs none: its shrinking reserve already lets calls go one by one.
        spread_from = reserve + (SPREAD_RESERVES - 1) * self.reserve(self.limit)
        if priority == BACKGROUND or left > spread_from:
            return now
        interval = (self.window_end - now) / (left - reserve)
        return max(now, self._last_slot[priority] + interval)

    def _exhausted_until(self, now: float, in_flight: int, priority: str = INTERACTIVE) -> float:
        """`now`, or the window's end if the budget left is down to the reserve."""
        if self.limit is None or self.remaining is None or self.window_end is None:
            return now
        if now >= self.window_end:
            self.remaining = self.window_end = None
            return now
        left = self.remaining - in_flight
        if left <= self.reserve(self.limit, priority, self.window_end - now):
            return max(now, self._turn_at_reserve(left, priority))
        return now

    # --- around each call ------------------------------------------------------------------

    def before_call(self, sleep: Callable[[float], None], priority: str = INTERACTIVE) -> None:
        """Wait (with the pacer's or else the client's `sleep`) until the budget allows one
        more call of `priority`; count it.

        At most two sleeps: the planned one, and one more if answers that came meanwhile (other
        threads' calls, a 429) used up the budget. A fake `sleep` never loops here.
        """
        sleep = self.sleep or sleep
        with self._lock:
            now = self.clock()
            slot = self._slot(now, self.in_flight, priority)
            self.in_flight += 1  # reserved now, so other threads plan around it
            self._last_slot[priority] = max(self._last_slot[priority], slot)
            self.stats.calls += 1
        if slot <= now:
            return
        waited = slot - now
        sleep(waited)
        with self._lock:
            now = self.clock()
            again = self._exhausted_until(now, self.in_flight - 1, priority) - now
        if again > 0:
            sleep(again)
            waited += again
        with self._lock:
            self.stats.paced_waits += 1
            self.stats.paced_seconds += waited
            logger.debug(
                "%s pacing: waited %.2fs (%s of %s calls left in this window, %d in flight); "
                "totals %s",
                self.name,
                waited,
                self.remaining,
                self.limit,
                self.in_flight,
                self.stats.line(),
            )

    def after_call(self, status: int | None, headers: Mapping[str, str]) -> None:
        """Learn from an answer (`status` None: no answer). Headers as ThrottleRequests."""
        view = self._learn(status, headers)
        if view is not None and self.observer is not None:
            self.observer(view)

    def _learn(self, status: int | None, headers: Mapping[str, str]) -> BudgetView | None:
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
            limit = _int(headers.get("X-RateLimit-Limit"))
            if status is None or limit is None or limit < MIN_PACED_LIMIT:
                return None  # no answer, a route without this throttle, or a limit too small
            now = self.clock()
            if status == 429:
                self.stats.rate_limited += 1
                retry_after = _int(headers.get("Retry-After"))
                self.limit, self.remaining = limit, 0
                wait = WINDOW_SECONDS if retry_after is None else retry_after
                self.window_end = now + wait + RETRY_AFTER_MARGIN
                logger.debug("%s pacing: answered 429; totals %s", self.name, self.stats.line())
                return self._view(now, rate_limited=True)
            remaining = _int(headers.get("X-RateLimit-Remaining"))
            if remaining is None:
                return None
            if limit != self.limit:
                self.limit, self.remaining = limit, None
            new_window = (
                self.remaining is None
                or self.window_end is None
                or now >= self.window_end
                # A count well above the lowest seen: the window turned over. Answers of
                # concurrent calls can come back a little out of order; the reserve absorbs it.
                or remaining > self.remaining + self.reserve(limit)
            )
            if new_window:
                # Its first hit was at or before this answer: it ends by now + 60 s.
                self.window_end = now + WINDOW_SECONDS + WINDOW_MARGIN
                self.remaining = remaining
            else:
                self.remaining = min(self.remaining or 0, remaining)
            return self._view(now, rate_limited=False)

    def _view(self, now: float, *, rate_limited: bool) -> BudgetView:
        """Under the lock, after an answer set limit, remaining and window_end."""
        assert self.limit is not None and self.remaining is not None
        resets_in = None if self.window_end is None else max(0.0, self.window_end - now)
        return BudgetView(self.limit, self.remaining, resets_in, rate_limited)


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


# --- one pacer per budget in this process ---------------------------------------------------

_registry: dict[tuple[str, str], RatePacer] = {}
_registry_lock = threading.Lock()


def pacer_for(base_url: str, token: str, *, name: str = "Coolify") -> RatePacer:
    """The process's pacer for this URL and token: every client of them shares it (the budget
    is the server's, not a client's). Keyed by a hash, so the token is not kept twice."""
    key = (base_url.rstrip("/"), hashlib.sha256(token.encode("utf-8")).hexdigest())
    with _registry_lock:
        pacer = _registry.get(key)
        if pacer is None:
            pacer = _registry[key] = RatePacer(name=name)
        return pacer


def install(base_url: str, token: str, pacer: RatePacer) -> RatePacer:
    """Make `pacer` the process's pacer for this URL and token (tests and the bench give
    every client, whoever makes it, one pacer on a faster clock)."""
    key = (base_url.rstrip("/"), hashlib.sha256(token.encode("utf-8")).hexdigest())
    with _registry_lock:
        _registry[key] = pacer
    return pacer


def reset() -> None:
    """Forget every budget (tests; and a forked child, whose parent's locks may be held)."""
    global _registry_lock
    _registry.clear()
    _registry_lock = threading.Lock()


os.register_at_fork(after_in_child=reset)
