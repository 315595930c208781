"""Interactive calls jump the queue in Coolify's budget (stacks/clients/pacing.py, issue 17):
background calls leave the larger reserve, spread without pushing interactive ones back, and
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


def test_background_waits_at_its_reserve_while_interactive_goes_at_once(pacer, clock):
    answer(pacer, 200, 199)
    answer(pacer, 200, 50)  # a quarter left: the background reserve
    assert pacer.reserve(200, BACKGROUND) == 50 and pacer.reserve(200) == 10

    assert waited(pacer, clock, INTERACTIVE) == 0
    pacer.after_call(200, {"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "49"})
    assert waited(pacer, clock, BACKGROUND) > 55  # until the window has certainly ended


def test_background_spreading_never_pushes_interactive_calls_back(pacer, clock):
    answer(pacer, 200, 199)
    answer(pacer, 200, 58)  # in the background's spread zone (50..60), far above interactive's
    for remaining in range(57, 53, -1):
        waited(pacer, clock, BACKGROUND)
        answer(pacer, 200, remaining)
    assert pacer.stats.paced_waits > 0

    assert waited(pacer, clock, INTERACTIVE) == 0


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
