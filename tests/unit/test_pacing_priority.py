"""Interactive calls jump the queue in Coolify's budget (stacks/clients/pacing.py, issue 17):
background calls leave people a quarter of the limit for the rest of each window (a reserve that
shrinks as the window runs out), never pushing interactive ones back, and
the priority reaches the client from `calls_as` or the client's own; the budget is shared with
the dashboard through one row (stacks/remote/budget.py)."""

from __future__ import annotations

import httpx
import pytest

from stacks.clients import pacing
from stacks.clients.coolify import CoolifyClient
from stacks.clients.pacing import BACKGROUND, INTERACTIVE, RatePacer, calls_as
from stacks.models import RemoteSnapshot
from stacks.remote import budget, get_coolify
from tests.unit.test_pacing import FakeClock, answer

TOKEN = "priority-test-token"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pacer(clock) -> RatePacer:
    return RatePacer(clock=clock.now, background_share=0.25)


def waited(pacer: RatePacer, clock: FakeClock, priority: str) -> float:
    before = clock.now()
    pacer.before_call(clock.sleep, priority)
    return clock.now() - before


def test_background_waits_for_its_shrinking_reserve_while_interactive_goes_at_once(pacer, clock):
    answer(pacer, 200, 199)  # a window begins: it ends 60.25 s from now at the latest
    answer(pacer, 200, 50)  # a quarter left, with the whole window to go: the background reserve
    assert pacer.reserve(200, BACKGROUND) == 50 and pacer.reserve(200) == 10
    assert pacer.reserve(200, BACKGROUND, time_left=30) == 25
    assert pacer.reserve(200, BACKGROUND, time_left=1) == 10  # never below the processes'

    assert waited(pacer, clock, INTERACTIVE) == 0
    answer(pacer, 200, 49)
    # Not the window's end: once the reserve (50 at 1.2 s a call) is below the 49 left.
    wait = waited(pacer, clock, BACKGROUND)
    assert 2.0 < wait < 3.5
    assert pacer.reserve(200, BACKGROUND, time_left=pacer.window_end - clock.now()) < 49


def test_background_calls_go_one_by_one_as_the_reserve_shrinks_never_before_people(pacer, clock):
    answer(pacer, 200, 199)
    answer(pacer, 200, 50)
    gaps = []
    for remaining in range(49, 29, -2):
        gaps.append(waited(pacer, clock, BACKGROUND))
        answer(pacer, 200, remaining)
        assert waited(pacer, clock, INTERACTIVE) == 0  # a person never queues behind them
        answer(pacer, 200, remaining - 1)
    # Each background call waits for the reserve to shrink past one more call (1.2 s at
    # 200 calls/min and 25 %), a person's call in between took one too: 2.4 s apart.
    assert all(2.3 < gap < 2.5 for gap in gaps[1:]), gaps


def test_background_work_alone_uses_the_whole_window(pacer, clock):
    answer(pacer, 200, 199)
    window_end = pacer.window_end
    remaining = 199
    while clock.now() < window_end and remaining > 0:
        waited(pacer, clock, BACKGROUND)
        if clock.now() >= window_end:
            break
        remaining -= 1
        answer(pacer, 200, remaining)
    # All but the processes' reserve (10), not all but the background's (50).
    assert remaining <= pacer.reserve(200) + 1


def test_background_waits_for_the_next_window_at_the_processes_reserve(pacer, clock):
    answer(pacer, 200, 199)
    answer(pacer, 200, 10)

    assert waited(pacer, clock, BACKGROUND) > 55


def test_the_interactive_rules_are_the_old_ones(pacer, clock):
    answer(pacer, 200, 199)
    answer(pacer, 200, 10)

    assert waited(pacer, clock, INTERACTIVE) > 55


def test_calls_as_sets_the_priority_of_a_clients_calls():
    seen: list[str] = []
    pacer = RatePacer()
    original = pacer.before_call

    def spy(sleep, priority=INTERACTIVE):
        seen.append(priority)
        original(sleep, priority)

    pacer.before_call = spy  # type: ignore[method-assign]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[])

    client = CoolifyClient(
        "https://coolify.example.test",
        TOKEN,
        pacer=pacer,
        priority=BACKGROUND,
        transport=httpx.MockTransport(handler),
    )
    with client:
        client.list_projects()
        with calls_as(INTERACTIVE):
            client.list_projects()
        client.list_projects()

    assert seen == [BACKGROUND, INTERACTIVE, BACKGROUND]
    with pytest.raises(ValueError):
        CoolifyClient("https://coolify.example.test", TOKEN, priority="urgent")


def test_clients_from_settings_are_background_and_report_to_the_dashboard(settings):
    settings.COOLIFY_URL = "http://127.0.0.1:9"
    settings.COOLIFY_TOKEN = TOKEN
    settings.COOLIFY_BACKGROUND_RESERVE_SHARE = 0.3
    pacing.reset()
    try:
        with get_coolify() as client:
            assert client.priority == BACKGROUND
            assert client.pacer.observer is budget.note
            assert client.pacer.reserve(200, BACKGROUND) == 60
    finally:
        pacing.reset()


def forget_the_budget() -> None:
    """No figure from before: a check thread of an earlier test (one that hung, on purpose)
    may have written one after that test ended."""
    RemoteSnapshot.objects.filter(name=budget.SNAPSHOT).delete()


@pytest.mark.django_db
def test_the_budget_seen_by_one_process_is_read_by_every_other(monkeypatch, settings):
    settings.BACKGROUND_OPERATIONS_IN_FLIGHT = 5
    monkeypatch.setattr(budget, "_last_write", -float("inf"))
    # As a worker outside any transaction writes it (the test's own transaction keeps the row
    # to itself: a stray thread of an earlier test cannot overwrite it meanwhile).
    monkeypatch.setattr(budget, "_in_transaction", lambda: False)
    forget_the_budget()
    pacer = RatePacer()
    budget.watch(pacer)

    answer(pacer, 200, 120)
    answer(pacer, 200, 110)  # within WRITE_EVERY of the first: not written

    now = budget.current()
    assert (now["limit"], now["remaining"], now["used"]) == (200, 120, 80)
    assert now["resets_at"] is not None and now["last_429_at"] is None
    assert (now["interactive_reserve"], now["background_reserve"]) == (10, 50)
    assert (now["background_waiting"], now["background_in_flight"]) == (0, 0)
    assert now["background_cap"] == 5

    answer(pacer, 200, 0, status=429, **{"Retry-After": "30"})  # a 429 is written at once
    assert budget.current()["last_429_at"] is not None

    # Inside a caller's transaction nothing is written (the row would stay locked for others).
    monkeypatch.setattr(budget, "_last_write", -float("inf"))
    monkeypatch.setattr(budget, "_in_transaction", lambda: True)
    answer(pacer, 200, 7)
    assert budget.current()["remaining"] != 7


@pytest.mark.django_db
def test_without_any_answer_the_budget_is_unknown():
    forget_the_budget()
    now = budget.current()

    assert now["limit"] is None and now["remaining"] is None and now["used"] is None


def test_the_processes_reserve_covers_every_process_sharing_the_token(clock, settings):
    """Each process may have a call in flight decided on an older count: with more processes
    than 5 % of the limit, the reserve grows to their number (else their answers meet 429)."""
    pacer = RatePacer(clock=clock.now, background_share=0.25)
    assert pacer.reserve(200) == 10
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 20}
    budget.watch(pacer)
    pacer.observer = None  # the dashboard's shared figure is another test's

    assert pacer.callers == 20 + budget.WEB_PROCESSES
    assert pacer.reserve(200) == 23
    answer(pacer, 200, 199)
    answer(pacer, 200, 23)
    assert waited(pacer, clock, INTERACTIVE) > 55  # at 23 left: as the old rule at 10
