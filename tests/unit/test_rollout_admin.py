"""The rollout pages (ops/admin/rollouts.py): the list, "New rollout" (preview, start), a
rollout's page and its live region, bounded in queries whatever the number of stacks; who may
look and who may act; bad input named beside its field; actions confirmed first, refused ones a
message, never a 500."""

from __future__ import annotations

import itertools
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ops.admin.rollout_pages import WAVE_STACKS_SHOWN
from ops.models import (
    Rollout,
    RolloutStack,
    RolloutStackStatus,
    RolloutStatus,
    RolloutWave,
    WaveStatus,
)
from stacks.choices import StackStatus
from stacks.compose import load_manifest
from tenants.models import RolloutRing

TEMPLATE = "openclaw-agent"
CHANGELIST = reverse("admin:ops_rollout_changelist")
NEW = reverse("admin:ops_rollout_new")
HTMX = {"HTTP_HX_REQUEST": "true"}
OLD = "0ld-version"
RUNNING = StackStatus.RUNNING  # a rollout redeploys running stacks only


def page_of(rollout: Rollout) -> str:
    return reverse("admin:ops_rollout_change", args=[rollout.pk])


def act(rollout: Rollout, action: str, wave: int | None = None) -> str:
    url = reverse("admin:ops_rollout_act", args=[rollout.pk, action])
    return f"{url}?wave={wave}" if wave is not None else url


def current_version() -> str:
    return load_manifest(TEMPLATE).version


@pytest.fixture
def make_rollout(db, make_stack, operator):
    """A rollout as the engine leaves it: waves of stacks (sizes given), each running (or
    one failed, its stacks failed)."""
    numbers = itertools.count(1)

    def make(*sizes: int, status: str = RolloutStatus.RUNNING, failed_wave: int | None = None):
        rollout = Rollout.objects.create(
            template_name=TEMPLATE,
            to_version=current_version(),
            from_versions=[OLD],
            status=status,
            wave_sizes=["1", "5%", "rest"],
            soak_minutes=10,
            require_validation=False,
            filters={},
            created_by=operator,
        )
        for number, size in enumerate(sizes, start=1):
            failed = number == failed_wave
            wave = RolloutWave.objects.create(
                rollout=rollout,
                number=number,
                ring=RolloutRing.STANDARD,
                status=WaveStatus.FAILED if failed else WaveStatus.RUNNING,
                started_at=timezone.now(),
            )
            for _ in range(size):
                stack = make_stack(f"tenant-{next(numbers):03d}", template_version=OLD)
                RolloutStack.objects.create(
                    rollout=rollout,
                    wave=wave,
                    stack=stack,
                    from_version=OLD,
                    status=RolloutStackStatus.FAILED if failed else RolloutStackStatus.PENDING,
                    error="health check failed: webui unhealthy" if failed else "",
                )
        return rollout

    return make


def queries_for(client, url: str, **extra) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code == 200
    return len(queries)


# --- the list and a rollout's page -------------------------------------------------------------


def test_the_list_shows_status_template_versions_progress_and_creator(client, viewer, make_rollout):
    rollout = make_rollout(2, 3)
    RolloutStack.objects.filter(pk=rollout.stacks.first().pk).update(
        status=RolloutStackStatus.PASSED
    )
    client.force_login(viewer)
    html = client.get(CHANGELIST).content.decode()
    assert "Running" in html
    assert f"{OLD} → {current_version()}" in html
    assert "1/5" in html
    assert "operator" in html
    assert "Preview a rollout" in html  # a viewer may preview, not start


def test_a_rollouts_page_asks_as_many_queries_for_40_stacks_as_for_1(client, viewer, make_rollout):
    client.force_login(viewer)
    small = make_rollout(1)
    big = make_rollout(10, 30)
    small_waves = make_rollout(1, 1)
    assert queries_for(client, page_of(small_waves)) == queries_for(client, page_of(big))
    assert queries_for(client, page_of(small), **HTMX) == queries_for(client, page_of(big), **HTMX)


def test_each_wave_shows_its_first_stacks_and_links_to_all_of_them(client, viewer, make_rollout):
    rollout = make_rollout(2, WAVE_STACKS_SHOWN + 5)
    client.force_login(viewer)
    html = client.get(page_of(rollout)).content.decode()
    assert html.count('class="cf-rollout-stack"') == 2 + WAVE_STACKS_SHOWN
    wave = rollout.waves.get(number=2)
    link = reverse("admin:ops_rolloutstack_changelist") + f"?wave={wave.pk}"
    assert f"All {WAVE_STACKS_SHOWN + 5} stacks of wave 2" in html
    assert link in html
    listed = client.get(link)
    assert listed.status_code == 200
    assert listed.context["cl"].result_count == WAVE_STACKS_SHOWN + 5


def test_a_poll_gets_only_the_live_region_and_uses_no_message(client, operator, make_rollout):
    rollout = make_rollout(1, status=RolloutStatus.PAUSED)
    client.force_login(operator)
    client.post(act(rollout, "resume"))  # leaves a message for the next full page
    poll = client.get(page_of(rollout), **HTMX).content.decode()
    assert 'id="cf-rollout-live"' in poll
    assert "<html" not in poll and "messagelist" not in poll
    assert "messagelist" in client.get(page_of(rollout)).content.decode()


def test_a_halted_rollout_names_the_failure_and_offers_the_wave_rollback(
    client, operator, make_rollout
):
    rollout = make_rollout(1, 3, status=RolloutStatus.HALTED, failed_wave=2)
    client.force_login(operator)
    html = client.get(page_of(rollout)).content.decode()
    assert "Halted at wave 2" in html
    assert "health check failed: webui unhealthy" in html
    assert f'href="{act(rollout, "rollback", 2)}"' in html
    assert "Roll back wave 2" in html
    assert "Roll back wave 1" not in html
    assert 'id="cf-rollout-pause"' not in html  # a halted rollout resumes, it does not pause
    # Resuming waits for the failed wave's rollback (the engine's rule), and the page says so.
    assert 'id="cf-rollout-resume"' not in html
    assert "Resume once wave 2 is rolled back" in html
    assert 'id="cf-rollout-cancel"' in html
    RolloutWave.objects.filter(rollout=rollout, number=2).update(status=WaveStatus.ROLLED_BACK)
    html = client.get(page_of(rollout)).content.decode()
    assert 'id="cf-rollout-resume"' in html
    assert "Roll back wave 2" not in html
    assert "The failed wave is rolled back" in html


def test_resuming_before_the_rollback_is_a_message_naming_the_rule(client, operator, make_rollout):
    rollout = make_rollout(1, 3, status=RolloutStatus.HALTED, failed_wave=2)
    client.force_login(operator)
    response = client.post(act(rollout, "resume"), follow=True)
    assert response.status_code == 200
    assert "Resume: nothing changed" in response.content.decode()
    assert "roll that wave back first" in response.content.decode()
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.HALTED


# --- permissions -------------------------------------------------------------------------------


def test_a_viewer_sees_the_page_without_buttons(client, viewer, make_rollout):
    rollout = make_rollout(1, 3, status=RolloutStatus.HALTED, failed_wave=2)
    client.force_login(viewer)
    html = client.get(page_of(rollout)).content.decode()
    assert 'id="cf-rollout-actions"' not in html
    assert "need the operator role" in html


@pytest.mark.parametrize("action", ["pause", "resume", "cancel", "rollback"])
def test_a_viewer_is_refused_every_action(client, viewer, make_rollout, action):
    rollout = make_rollout(1, 3, status=RolloutStatus.HALTED, failed_wave=2)
    client.force_login(viewer)
    assert client.get(act(rollout, action, 2)).status_code == 403
    assert client.post(act(rollout, action), {"wave": "2"}).status_code == 403
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.HALTED


def test_a_viewer_previews_but_may_not_start(client, viewer, make_stack):
    make_stack("acme", template_version=OLD, status=RUNNING)
    client.force_login(viewer)
    preview = client.get(NEW, {"template": TEMPLATE, "wave_sizes": "1, rest", "soak_minutes": 5})
    assert preview.status_code == 200
    assert 'id="cf-rollout-start"' not in preview.content.decode()
    started = client.post(
        NEW, {"template": TEMPLATE, "wave_sizes": "1, rest", "soak_minutes": 5, "confirm": "yes"}
    )
    assert started.status_code == 403
    assert not Rollout.objects.exists()


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", ["0", "abc", "150%", "", "1, -5"])
def test_bad_wave_sizes_are_named_beside_their_field(client, operator, make_stack, sizes):
    make_stack("acme", template_version=OLD, status=RUNNING)
    client.force_login(operator)
    response = client.get(NEW, {"template": TEMPLATE, "wave_sizes": sizes, "soak_minutes": 5})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["wave_sizes"], errors
    html = response.content.decode()
    assert 'id="id_wave_sizes_error"' in html
    assert response.context["plan"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("soak_minutes", "-1"),
        ("soak_minutes", "soon"),
        ("soak_minutes", "99999999999"),
        ("template", "no-such"),
        ("ring", "vip"),
        ("status", "gone"),
        ("status", "stopped"),  # the plan's rule: a rollout redeploys running stacks only
    ],
)
def test_other_bad_input_is_named_beside_its_field(client, operator, field, value):
    client.force_login(operator)
    data = {"template": TEMPLATE, "wave_sizes": "1, rest", "soak_minutes": "5", field: value}
    response = client.get(NEW, data)
    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]


def test_start_needs_the_confirmation_box_and_the_previewed_count(client, operator, make_stack):
    make_stack("acme", template_version=OLD, status=RUNNING)
    client.force_login(operator)
    data = {"template": TEMPLATE, "wave_sizes": "1, rest", "soak_minutes": "5"}
    unconfirmed = client.post(NEW, {**data, "expected_total": "1"})
    assert unconfirmed.status_code == 200
    assert "confirm: tick the box" in unconfirmed.content.decode()
    moved = client.post(NEW, {**data, "expected_total": "7", "confirm": "yes"})
    assert "The matching stacks changed since the preview" in moved.content.decode()
    assert not Rollout.objects.exists()


# --- preview, start, actions -------------------------------------------------------------------


def test_an_operator_previews_then_starts_a_rollout(client, operator, make_stack):
    for slug in ("acme", "globex", "initech"):
        make_stack(slug, template_version=OLD, status=RUNNING)
    make_stack("uptodate", template_version=current_version(), status=RUNNING)
    client.force_login(operator)
    data = {"template": TEMPLATE, "wave_sizes": "1, rest", "soak_minutes": "5"}
    preview = client.get(NEW, data)
    html = preview.content.decode()
    assert preview.context["plan"]["total"] == 3
    assert 'id="cf-rollout-diff"' in html and 'id="cf-rollout-audit"' in html
    assert re.search(r"acme.*globex.*initech", html, re.S)  # the order, canary ring none here
    assert "uptodate" not in html
    response = client.post(NEW, {**data, "expected_total": "3", "confirm": "yes"})
    rollout = Rollout.objects.get()
    assert response.status_code == 302
    assert response["Location"] == page_of(rollout)
    assert rollout.status == RolloutStatus.RUNNING
    assert rollout.created_by == operator
    assert rollout.stacks.count() == 3
    assert "started" in client.get(page_of(rollout)).content.decode()


def test_pause_is_confirmed_first_then_done_with_a_message(client, operator, make_rollout):
    rollout = make_rollout(1, 3)
    client.force_login(operator)
    confirm = client.get(act(rollout, "pause"))
    assert confirm.status_code == 200
    assert "Pause rollout" in confirm.content.decode()
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.RUNNING  # a GET changes nothing
    done = client.post(act(rollout, "pause"), follow=True)
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.PAUSED
    assert "Pause: done; the rollout is paused." in done.content.decode()


def test_an_action_its_status_does_not_allow_is_a_message_not_a_500(client, operator, make_rollout):
    rollout = make_rollout(1, status=RolloutStatus.COMPLETED)
    client.force_login(operator)
    response = client.post(act(rollout, "resume"), follow=True)
    assert response.status_code == 200
    assert "Resume: nothing changed" in response.content.decode()
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.COMPLETED


@pytest.mark.parametrize("wave", ["9", "²", "99999999999999999999", "-1", ""])
def test_rolling_back_a_wave_that_does_not_exist_names_the_wave(
    client, operator, make_rollout, wave
):
    rollout = make_rollout(1, status=RolloutStatus.HALTED)
    client.force_login(operator)
    response = client.post(act(rollout, "rollback"), {"wave": wave}, follow=True)
    assert response.status_code == 200
    assert f"Wave: there is no wave “{wave}” in this rollout." in response.content.decode()
    assert client.get(act(rollout, "rollback", wave), follow=True).status_code == 200


def test_an_unknown_action_or_rollout_is_not_found(client, operator, make_rollout):
    rollout = make_rollout(1)
    client.force_login(operator)
    assert client.post(act(rollout, "explode")).status_code == 404
    missing = reverse("admin:ops_rollout_change", args=[rollout.pk + 99])
    assert client.get(missing).status_code == 404
