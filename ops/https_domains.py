"""HTTPS of every live domain, as state that changes rarely: which domains a run probes, probing
them concurrently within the run's time budget, the run's summary, and storing what was seen.

Each domain has one HttpsDomainState row (status, since when, last checked, last message) and a
HttpsDomainChange row only when its status changes; the run's HealthCheckResult keeps counts and
the first few failing domains. A run probes only the domains that are due: never checked first,
then the most overdue; a healthy domain every HTTPS_RECHECK_MINUTES, a failing one every
HTTPS_FAILING_RECHECK_MINUTES (0: every run). Domains the budget did not reach stay due for the
next run; running out of time never makes a domain fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from ops.models import CheckStatus, HttpsDomainChange, HttpsDomainState, HttpsStatus
from ops.netprobe import HttpsProbe, ProbeRefused, ProbeSkipped, probe_https
from stacks.choices import StackStatus
from stacks.models import StackDomain

# Names listed in a message and failing domains kept in a result's details: a summary.
LISTED = 20
# A probe is started only with at least this much of the budget left.
MIN_PROBE_SECONDS = 0.2
WRITE_BATCH = 500
NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class KnownState:
    """A domain's stored state, as the plan and the summary need it."""

    status: str
    last_checked_at: datetime
    message: str = ""
    not_after: datetime | None = None


@dataclass(frozen=True)
class Observation:
    """What one probe of one domain saw."""

    domain: str
    status: str
    message: str
    not_after: datetime | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeRun:
    observations: dict[str, Observation]
    left: int  # due domains not probed (or inconclusive): still due next run


def recheck_after(status: str) -> timedelta:
    minutes = (
        settings.HTTPS_FAILING_RECHECK_MINUTES
        if status == HttpsStatus.FAILING
        else settings.HTTPS_RECHECK_MINUTES
    )
    return timedelta(minutes=minutes)


def due_domains(live: Iterable[str], known: dict[str, KnownState], now: datetime) -> list[str]:
    """The live domains to probe now, most overdue first (never checked before all).

    A domain counts as due when it would be overdue before the next scheduled run, so a
    healthy one is probed at most HTTPS_RECHECK_MINUTES after its last probe (given time).
    After those come domains due within a quarter of their interval: a run with time to spare
    takes them early, so a burst (every domain new at once) spreads out over the runs instead
    of coming back as one burst an interval later."""
    horizon = now + timedelta(minutes=settings.HEALTHCHECK_INTERVAL_MINUTES)

    def due_at(domain: str) -> datetime:
        state = known.get(domain)
        if state is None:
            return NEVER
        return state.last_checked_at + recheck_after(state.status)

    def early(domain: str) -> timedelta:
        state = known.get(domain)
        return recheck_after(state.status) / 4 if state else timedelta(0)

    due = [(due_at(domain), domain) for domain in live]
    return [domain for at, domain in sorted(due) if at < horizon + early(domain)]


def live_domains() -> list[str]:
    return sorted(
        set(
            StackDomain.objects.filter(
                released_at__isnull=True, stack__status=StackStatus.RUNNING
            ).values_list("domain", flat=True)
        )
    )


def known_states() -> dict[str, KnownState]:
    return {
        domain: KnownState(status, checked, message, not_after)
        for domain, status, checked, message, not_after in HttpsDomainState.objects.values_list(
            "domain", "status", "last_checked_at", "message", "not_after"
        ).iterator(chunk_size=2000)
    }


# --- probing ---------------------------------------------------------------------------------


def observe(domain: str, timeout: float, cut_short: bool) -> Observation | None:
    """Probe one domain; None when it timed out only because the budget cut its time short."""
    try:
        probe: HttpsProbe = probe_https(domain, timeout=timeout)
    except ProbeSkipped as skipped:
        return Observation(domain, HttpsStatus.NOT_CHECKED, str(skipped), facts={"host": domain})
    except ProbeRefused as refused:  # not on the internet: it cannot serve customers
        return Observation(
            domain, HttpsStatus.FAILING, str(refused), facts={"host": domain, "error": str(refused)}
        )
    except Exception as exc:  # one odd domain must not end the run
        error = f"{type(exc).__name__}: {exc}"
        return Observation(
            domain, HttpsStatus.FAILING, error, facts={"host": domain, "error": error}
        )
    if not probe.ok:
        if probe.timed_out and cut_short:
            return None
        return Observation(domain, HttpsStatus.FAILING, probe.facts["error"], facts=probe.facts)
    not_after = datetime.fromisoformat(probe.facts["not_after"])
    status = (
        HttpsStatus.EXPIRING
        if probe.facts["days_left"] < settings.HTTPS_CERT_WARN_DAYS
        else HttpsStatus.OK
    )
    return Observation(domain, status, probe.facts["http_status"], not_after, probe.facts)


def probe_due(
    domains: list[str],
    *,
    budget: float,
    probe_timeout: float,
    workers: int,
    observe: Callable[[str, float, bool], Observation | None] = observe,
) -> ProbeRun:
    """Probe `domains` in order, `workers` at a time, all done within `budget` seconds.

    Probes are submitted one as another ends, each with at most what is left of the budget,
    and every socket operation is bounded by that (netprobe), so the pool is empty by the
    deadline and no thread outlives the run. (A DNS lookup, with PROBE_EXTERNAL, is bounded
    by the system resolver's own timeout: getaddrinfo cannot be interrupted.)"""
    deadline = time.monotonic() + budget
    queue: Iterator[str] = iter(domains)
    observations: dict[str, Observation] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="https-probe") as pool:
        in_flight: dict[Future[Observation | None], str] = {}

        def start_next() -> None:
            left = deadline - time.monotonic()
            if left < MIN_PROBE_SECONDS:
                return
            domain = next(queue, None)
            if domain is not None:
                timeout = min(probe_timeout, left)
                in_flight[pool.submit(observe, domain, timeout, timeout < probe_timeout)] = domain

        for _ in range(max(1, workers)):
            start_next()
        while in_flight:
            done, _ = wait(
                in_flight,
                timeout=max(0.0, deadline - time.monotonic()) + 1.0,
                return_when=FIRST_COMPLETED,
            )
            if not done:  # cannot happen with bounded sockets; never wait past the budget
                break
            for future in done:
                domain = in_flight.pop(future)
                observation = future.result()
                if observation is not None:
                    observations[domain] = observation
                start_next()
    return ProbeRun(observations, left=len(domains) - len(observations))


# --- the run's summary -----------------------------------------------------------------------


def _listed(names: list[str]) -> str:
    more = len(names) - LISTED
    return ", ".join(names[:LISTED]) + (f" and {more} more" if more > 0 else "")


def summarise(
    live: list[str],
    known: dict[str, KnownState],
    run: ProbeRun,
    now: datetime,
) -> tuple[str, str, dict[str, Any]]:
    """The check's status, message and details over every live domain: this run's
    observations over the stored states. Down only for domains that fail."""
    current: dict[str, KnownState | Observation] = {
        domain: run.observations.get(domain) or known[domain]
        for domain in live
        if domain in run.observations or domain in known
    }
    by_status: dict[str, list[str]] = {status: [] for status in HttpsStatus.values}
    for domain, state in current.items():
        by_status[state.status].append(domain)
    failing = by_status[HttpsStatus.FAILING]
    expiring = [
        f"{domain} ({days_left(current[domain].not_after, now)} days)"
        for domain in by_status[HttpsStatus.EXPIRING]
    ]
    not_checked = by_status[HttpsStatus.NOT_CHECKED]
    stale_after = 2 * timedelta(minutes=settings.HTTPS_RECHECK_MINUTES)
    overdue = [
        domain
        for domain, state in current.items()
        if isinstance(state, KnownState) and state.last_checked_at < now - stale_after
    ]
    details: dict[str, Any] = {
        "live": len(live),
        "probed": len(run.observations),
        "left_for_next_run": run.left,
        "never_checked": len(live) - len(current),
        "overdue": len(overdue),
        **{status: len(domains) for status, domains in by_status.items()},
        # The first few failing, then expiring, domains: what to look at first.
        "domains": [
            _facts(domain, current[domain], now)
            for domain in (failing + by_status[HttpsStatus.EXPIRING])[:LISTED]
        ],
    }
    if not live:
        return CheckStatus.OK, "No live domains to check", details
    if failing:
        return CheckStatus.DOWN, f"HTTPS failing: {_listed(failing)}", details
    if expiring:
        return CheckStatus.WARNING, f"Certificates expiring: {_listed(expiring)}", details
    if not_checked:  # not an answer from the domain: say so, do not call it failing
        return (
            CheckStatus.WARNING,
            f"Not checked (external probes are off): {_listed(not_checked)}",
            details,
        )
    if overdue:
        return (
            CheckStatus.WARNING,
            f"{len(overdue)} domain(s) not probed for over {stale_after}: the probes do not "
            "keep up (raise HTTPS_PROBE_WORKERS or HEALTHCHECK_TIMEOUT)",
            details,
        )
    message = f"{len(by_status[HttpsStatus.OK])} domain(s) serve HTTPS"
    if details["never_checked"]:
        message += f"; {details['never_checked']} not probed yet (next runs)"
    return CheckStatus.OK, message, details


def days_left(not_after: datetime | None, now: datetime) -> int | None:
    return None if not_after is None else (not_after - now).days


def _facts(domain: str, state: KnownState | Observation, now: datetime) -> dict[str, Any]:
    if isinstance(state, Observation):
        return state.facts
    facts: dict[str, Any] = {"host": domain, "last_checked_at": state.last_checked_at.isoformat()}
    if state.status == HttpsStatus.FAILING:
        facts["error"] = state.message
    else:
        facts["days_left"] = days_left(state.not_after, now)
    return facts


# --- storing ---------------------------------------------------------------------------------


def _chunks(items: list[Any], size: int = WRITE_BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def record_observations(observations: dict[str, Observation], now: datetime) -> int:
    """Store each probed domain's state; a change row only where the status changed (or the
    domain is new). Unchanged domains cost one UPDATE per WRITE_BATCH. Returns changes written."""
    if not observations:
        return 0
    domains = list(observations)
    existing: dict[str, HttpsDomainState] = {}
    for chunk in _chunks(domains):
        existing.update(
            (state.domain, state) for state in HttpsDomainState.objects.filter(domain__in=chunk)
        )
    new_states, changes, details_changed, unchanged = [], [], [], []
    for domain, seen in observations.items():
        state = existing.get(domain)
        message = seen.message[:2000]
        if state is None:
            new_states.append(
                HttpsDomainState(
                    domain=domain,
                    status=seen.status,
                    since=now,
                    last_checked_at=now,
                    message=message,
                    not_after=seen.not_after,
                )
            )
            changes.append(
                HttpsDomainChange(
                    domain=domain, status=seen.status, changed_at=now, message=message
                )
            )
        elif state.status != seen.status:
            # Only from the status read: a run recording at the same time changes it once.
            moved = HttpsDomainState.objects.filter(pk=state.pk, status=state.status).update(
                status=seen.status,
                since=now,
                last_checked_at=now,
                message=message,
                not_after=seen.not_after,
            )
            if moved:
                changes.append(
                    HttpsDomainChange(
                        domain=domain,
                        status=seen.status,
                        previous_status=state.status,
                        changed_at=now,
                        message=message,
                    )
                )
        elif (state.message, state.not_after) != (message, seen.not_after):
            state.message, state.not_after, state.last_checked_at = message, seen.not_after, now
            details_changed.append(state)
        else:
            unchanged.append(state.pk)
    HttpsDomainState.objects.bulk_create(new_states, batch_size=WRITE_BATCH, ignore_conflicts=True)
    HttpsDomainState.objects.bulk_update(
        details_changed, ["message", "not_after", "last_checked_at"], batch_size=WRITE_BATCH
    )
    for chunk in _chunks(unchanged):
        HttpsDomainState.objects.filter(pk__in=chunk).update(last_checked_at=now)
    HttpsDomainChange.objects.bulk_create(changes, batch_size=WRITE_BATCH)
    return len(changes)
