"""Pacing to Coolify's rate limit (stacks/clients/pacing.py): the rules with a fake clock, and
threads against the simulator on loopback with a low limit, sharing a fake clock with it."""

from __future__ import annotations

import threading

import httpx
import pytest

from stacks.clients import pacing
from stacks.clients.coolify import CoolifyClient
from stacks.clients.pacing import (
    RETRY_AFTER_MARGIN,
    WINDOW_MARGIN,
    WINDOW_SECONDS,
    RatePacer,
    pacer_for,
)
from stacks.coolify_simulator.server import build as build_simulator

TOKEN = "pacing-test-token"


class FakeClock:
    """Time that moves only when someone sleeps; shared by threads, the pacer and the sim."""

    def __init__(self) -> None:
        self.t = 1_000.0
        self.lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self.lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.t += max(0.0, seconds)


def answer(pacer: RatePacer, limit: int, remaining: int, status: int = 200, **extra: str) -> None:
    headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), **extra}
    pacer.after_call(status, headers)


def call(pacer: RatePacer, clock: FakeClock) -> float:
    """One paced call; how long it waited."""
    before = clock.now()
    pacer.before_call(clock.sleep)
    return clock.now() - before


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pacer(clock) -> RatePacer:
    return RatePacer(clock=clock.now)


def test_without_rate_limit_headers_calls_never_wait(pacer, clock):
    for _ in range(500):
        assert call(pacer, clock) == 0
        pacer.after_call(200, {})

    assert pacer.stats.calls == 500 and pacer.stats.paced_waits == 0


def test_a_budget_with_plenty_left_costs_no_wait(pacer, clock):
    # One worker at a low rate: the count stays far above the spread threshold.
    for remaining in range(199, 60, -1):
        assert call(pacer, clock) == 0
        answer(pacer, 200, remaining)

    assert clock.sleeps == [] and pacer.stats.paced_seconds == 0


def test_at_the_reserve_it_waits_until_the_window_has_certainly_ended(pacer, clock):
    call(pacer, clock)
    answer(pacer, 30, 29)  # the first answer of a window: it ends within 60 s of now
    window_end = clock.now() + WINDOW_SECONDS + WINDOW_MARGIN
    clock.sleep(10)
    call(pacer, clock)
    answer(pacer, 30, pacer.reserve(30))

    waited = call(pacer, clock)

    assert clock.now() == pytest.approx(window_end)
    assert waited == pytest.approx(WINDOW_SECONDS + WINDOW_MARGIN - 10)
    assert pacer.stats.paced_waits == 1
    assert pacer.stats.paced_seconds == pytest.approx(waited)


def test_near_the_reserve_calls_are_spread_over_the_rest_of_the_window(pacer, clock):
    call(pacer, clock)
    answer(pacer, 200, 199)
    reserve = pacer.reserve(200)
    left = 2 * reserve - 1  # in the spread zone (below two reserves)
    call(pacer, clock)
    answer(pacer, 200, left)

    waits = []
    for i in range(5):
        waits.append(call(pacer, clock))
        answer(pacer, 200, left - i - 1)

    assert all(wait > 0 for wait in waits[1:])
    # The calls above the reserve spread over the ~61 s left: never a burst, never the whole wait.
    assert all(3.0 < wait < 15.0 for wait in waits[1:])


def test_a_429_waits_for_retry_after(pacer, clock):
    call(pacer, clock)
    answer(pacer, 200, 0, status=429, **{"Retry-After": "17"})

    waited = call(pacer, clock)

    assert waited == pytest.approx(17 + RETRY_AFTER_MARGIN)
    assert pacer.stats.rate_limited == 1


def test_a_new_window_is_seen_when_the_count_goes_back_up(pacer, clock):
    call(pacer, clock)
    answer(pacer, 30, 29)
    call(pacer, clock)
    answer(pacer, 30, 2)  # exhausted…
    call(pacer, clock)  # …so this one waited for the window to end
    answer(pacer, 30, 29)  # and the server shows a fresh window

    assert call(pacer, clock) == 0


def test_answers_out_of_order_do_not_open_a_new_window(pacer, clock):
    call(pacer, clock)
    answer(pacer, 30, 29)
    answer(pacer, 30, 3)
    answer(pacer, 30, 4)  # a concurrent call's answer, computed earlier, delivered later

    assert pacer.remaining == 3
    assert call(pacer, clock) > 0


def test_calls_in_flight_count_against_the_budget(pacer, clock):
    call(pacer, clock)
    answer(pacer, 30, 29)
    call(pacer, clock)
    answer(pacer, 30, pacer.reserve(30) + 2)

    first = call(pacer, clock)  # left: reserve + 2 - 0 in flight
    second = call(pacer, clock)  # left: reserve + 2 - 1 in flight

    assert pacer.in_flight == 2
    assert first >= 0 and second > 0


def test_calls_without_an_answer_leave_the_in_flight_count(pacer, clock):
    call(pacer, clock)
    pacer.after_call(None, {})

    assert pacer.in_flight == 0


def test_the_health_route_has_its_own_limit_and_is_not_paced():
    pacer = RatePacer()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        headers = {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "1"}
        return httpx.Response(200, text="OK", headers=headers)

    client = CoolifyClient(
        "https://coolify.example.test", TOKEN, transport=httpx.MockTransport(handler), pacer=pacer
    )
    with client:
        assert client.healthy()

    assert seen == ["/api/health"]
    assert pacer.stats.calls == 0 and pacer.limit is None


def test_clients_of_one_url_and_token_share_one_pacer():
    pacing.reset()
    try:
        a = CoolifyClient("http://127.0.0.1:9/", TOKEN)
        b = CoolifyClient("http://127.0.0.1:9", TOKEN)
        other_token = CoolifyClient("http://127.0.0.1:9", "another-token")

        assert a.pacer is b.pacer is pacer_for("http://127.0.0.1:9", TOKEN)
        assert other_token.pacer is not a.pacer
        assert TOKEN not in repr(pacing._registry)
    finally:
        pacing.reset()


# --- threads against the simulator on loopback ------------------------------------------------


@pytest.fixture
def limited_sim(clock):
    server = build_simulator(token=TOKEN, rate_limit_per_minute=30).start()
    server.api.clock = clock  # the simulator's windows run on the same fake time as the pacer
    yield server
    server.stop()


def hammer(url: str, pacers: list[RatePacer], clock: FakeClock, threads: int, calls: int) -> list:
    """`threads` threads per pacer (a pacer is a process), each making `calls` reads."""
    failures: list[Exception] = []

    def work(pacer: RatePacer) -> None:
        client = CoolifyClient(url, TOKEN, pacer=pacer, sleep=clock.sleep, attempts=1)
        with client:
            for _ in range(calls):
                try:
                    client.list_projects()
                except Exception as error:  # collected: the assertion names it
                    failures.append(error)

    workers = [
        threading.Thread(target=work, args=(pacer,)) for pacer in pacers for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return failures


def test_threads_sharing_a_low_limit_get_no_429(limited_sim, clock):
    pacer = RatePacer(clock=clock.now)

    failures = hammer(limited_sim.url, [pacer], clock, threads=4, calls=25)  # 100 calls, 30/min

    assert failures == []
    assert limited_sim.api.rate_limited == 0
    assert pacer.stats.calls == 100
    assert pacer.stats.paced_waits > 0 and pacer.stats.rate_limited == 0


def test_processes_sharing_one_budget_get_no_429_with_a_reserve_for_their_callers(
    limited_sim, clock
):
    # Two processes (two pacers), two threads each: four callers at once, a reserve of four.
    pacers = [RatePacer(clock=clock.now, reserve=4) for _ in range(2)]

    failures = hammer(limited_sim.url, pacers, clock, threads=2, calls=20)

    assert failures == []
    assert limited_sim.api.rate_limited == 0
    assert sum(p.stats.paced_waits for p in pacers) > 0


def test_a_limit_too_small_to_pace_is_left_to_the_429_handling(pacer, clock):
    call(pacer, clock)
    answer(pacer, 5, 0)
    call(pacer, clock)
    answer(pacer, 5, 0, status=429, **{"Retry-After": "30"})

    assert call(pacer, clock) == 0
    assert pacer.limit is None


def test_the_simulator_limits_health_by_ip_with_its_own_limit(clock):
    # RouteServiceProvider: `api/health` 1000/min, `api/v1/health` the API limit; no auth on
    # either, so both count on the caller's IP, apart from the token user's budget.
    from stacks.coolify_simulator.api import HEALTH_LIMIT, SimulatedCoolify

    sim = SimulatedCoolify(rate_limit_per_minute=30, clock=clock)
    sim.add_token(TOKEN, {"root"})
    bearer = {"authorization": f"Bearer {TOKEN}"}

    health = sim.handle("GET", "/api/health", {}, b"")
    v1_health = sim.handle("GET", "/api/v1/health", {}, b"")
    api = sim.handle("GET", "/api/v1/projects", bearer, b"")

    assert health.headers["X-RateLimit-Limit"] == str(HEALTH_LIMIT)
    assert v1_health.headers["X-RateLimit-Limit"] == "30"
    assert v1_health.headers["X-RateLimit-Remaining"] == "28"  # same IP counter as api/health
    assert api.headers["X-RateLimit-Remaining"] == "29"  # the user's own budget
