"""Issue 17's browser scenario in headless Debian Chromium: an operator previews a rollout of a
template's new version (sees the compose diff and the stacks' order, canary first), starts it,
watches its waves pass without reloading (the test stands in for the worker and the minute
schedule while the page polls), sees it halt when one stack's redeploy fails (a simulator
fault), rolls that wave back to the previous version, and resumes it to the end.

Stacks are deployed for real on the Coolify simulator with a real PocketBase. Screenshots (1400
and 390 px): artifacts/screenshots/rollout-*.png (tests/e2e/screens.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import OrmQ
from playwright.sync_api import Page, expect

from ops.models import Rollout, RolloutStatus, WaveStatus
from ops.rollouts import engine
from stacks.choices import OperationKind, OperationStatus
from stacks.compose import load_manifest
from stacks.coolify_simulator.server import Fault
from stacks.models import Stack
from stacks.models.template_release import TemplateRelease
from stacks.provisioning import run_operation
from stacks.services import request_operation
from stacks.services.dispatch import dispatch_background
from tenants.models import RolloutRing, Tenant
from tests.conftest import no_sleep
from tests.e2e.conftest import log_in
from tests.e2e.screens import overflows_horizontally, shoot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TEMPLATE = "openclaw-agent"
OLD_IMAGE = "ghcr.io/openclaw/openclaw:2026.1.0"
RUN_OPERATION_TASK = "stacks.tasks.run_operation_task"
SECRETS = {"ANTHROPIC_API_KEY": "sk-ant-rollout-browser-test"}
# (tenant, ring): canary first, the high-value customer last; standard in between by name.
TENANTS = (
    ("zeta-canary", RolloutRing.CANARY),
    ("acme", RolloutRing.STANDARD),
    ("globex", RolloutRing.STANDARD),
    ("initech", RolloutRing.STANDARD),
    ("bigbank", RolloutRing.LAST),
)
ORDER = ["zeta-canary-main", "acme-main", "globex-main", "initech-main", "bigbank-main"]
FAILING = "initech-main"  # in wave 3 (standard's "rest": globex, initech)


def old_release() -> str:
    """The template as it was before: the same files with an older image, kept as a release
    (what cfadmin keeps of every version it deployed). Returns its version."""
    current = TemplateRelease.objects.get(
        template_name=TEMPLATE, version=load_manifest(TEMPLATE).version
    )
    image = re.search(r"ghcr\.io/openclaw/openclaw:[\w.]+", current.manifest_text).group(0)
    old = TemplateRelease.objects.create(
        template_name=TEMPLATE,
        version="2026-01-old",
        manifest_text=current.manifest_text.replace(image, OLD_IMAGE),
        compose_text=current.compose_text,
    )
    return old.version


def deployed(make_stack, remote, operator, tenant: str, ring: str, version: str) -> Stack:
    """A stack deployed for real on the simulator at `version` (the worker's run of its DEPLOY)."""
    stack = make_stack(tenant, template_name=TEMPLATE, secrets=SECRETS)
    Tenant.objects.filter(pk=stack.tenant_id).update(rollout_ring=ring)
    operation = request_operation(
        stack, OperationKind.DEPLOY, actor=operator, parameters={"template_version": version}
    )
    assert run_operation(operation.pk, remote=remote, sleep=no_sleep)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    stack.refresh_from_db()
    assert stack.template_version == version
    return stack


def work(remote) -> None:
    """One round of what the workers and the minute schedule do: hand out background
    operations, run the tasks queued at the start of the round (operations through the
    provisioning engine; their hooks advance the rollout and queue the next wave's, run in the
    next round so the page can be seen between waves), then let each rollout advance."""
    dispatch_background()
    for row in list(OrmQ.objects.order_by("id")):
        task = row.task
        row.delete()
        if task["func"] == RUN_OPERATION_TASK:
            run_operation(task["args"][0], remote=remote, sleep=no_sleep)
        else:
            import_string(task["func"])(*task["args"], **task["kwargs"])
    for pk in Rollout.objects.values_list("pk", flat=True):
        engine.advance(pk, now=timezone.now())


def work_until(remote, done: Callable[[], bool], rounds: int = 40) -> None:
    for _ in range(rounds):
        if done():
            return
        work(remote)
    assert done(), "the rollout did not get there"


def wave_status(rollout: Rollout, number: int) -> str:
    return rollout.waves.get(number=number).status


def test_an_operator_previews_starts_watches_halts_rolls_back_and_resumes_a_rollout(
    page: Page, live_server, operator, make_stack, remote, coolify_sim
):
    version = old_release()
    stacks = {
        tenant: deployed(make_stack, remote, operator, tenant, ring, version)
        for tenant, ring in TENANTS
    }
    OrmQ.objects.all().delete()  # the deploys' queued tasks: `deployed` ran them already
    new_version = load_manifest(TEMPLATE).version

    # --- preview: the diff and the order -----------------------------------------------------
    log_in(page, live_server, operator.username, then="/admin/ops/rollout/")
    page.click("#cf-rollout-new-link")
    page.select_option("#id_template", TEMPLATE)
    page.fill("#id_wave_sizes", "1, rest")
    page.fill("#id_soak_minutes", "0")
    page.uncheck("#id_require_validation")
    page.click("input[name=preview]")
    expect(page.locator("#cf-rollout-total")).to_have_text("5 stacks")
    expect(page.locator("#cf-rollout-diff .cf-diff-del")).to_contain_text(["2026.1.0"])
    expect(page.locator("#cf-rollout-diff .cf-diff-add").first).to_be_visible()
    expect(page.locator("#cf-rollout-audit")).to_be_visible()
    order = page.locator("#cf-rollout-waves-plan .cf-rollout-order li").all_inner_texts()
    assert [label.split("/")[-1] for label in order] == ORDER, order
    expect(page.locator("#cf-plan-wave-1")).to_contain_text("Canary")
    expect(page.locator("#cf-plan-wave-4")).to_contain_text("Last")
    shoot(page, "rollout-preview")
    assert not page.evaluate("document.documentElement.scrollWidth > 1401")

    # --- start (confirmed) -------------------------------------------------------------------
    page.click("#cf-rollout-start-button")  # not confirmed yet: refused, said why
    expect(page.locator("#cf-rollout-start-errors")).to_contain_text("confirm: tick the box")
    page.check("#cf-rollout-confirm-box")
    page.click("#cf-rollout-start-button")
    rollout = Rollout.objects.get()
    expect(page).to_have_url(re.compile(rf"/admin/ops/rollout/{rollout.pk}/change/$"))
    expect(page.locator("ul.messagelist")).to_contain_text("started")
    expect(page.locator("#cf-rollout-status")).to_have_text("Running")
    page.evaluate("window.cfMarker = 1")  # gone if the page reloads

    # --- waves 1 and 2 pass while the page polls ------------------------------------------------
    work_until(remote, lambda: wave_status(rollout, 2) == WaveStatus.PASSED)
    wave1, wave2 = page.locator("#cf-rollout-wave-1"), page.locator("#cf-rollout-wave-2")
    expect(wave1.locator(".cf-wave-status")).to_have_text("Passed", timeout=15000)
    expect(wave2.locator(".cf-wave-status")).to_have_text("Passed", timeout=15000)
    expect(page.locator("#cf-rollout-progress")).to_have_text("2/5 passed", timeout=15000)
    assert page.evaluate("window.cfMarker") == 1, "the page reloaded"
    shoot(page, "rollout-progress")

    # --- a failing stack in wave 3 halts the rollout -----------------------------------------
    failing = stacks["initech"]
    service = rf"/api/v1/services/{failing.coolify_service_uuid}"
    coolify_sim.add_fault(Fault(service, "error", method="PATCH", times=None, status=422))
    rollout.refresh_from_db()
    work_until(remote, lambda: Rollout.objects.get(pk=rollout.pk).status == RolloutStatus.HALTED)
    expect(page.locator("#cf-rollout-status")).to_have_text("Halted", timeout=15000)
    halt = page.locator("#cf-rollout-halt")
    expect(halt).to_contain_text("Halted at wave 3", timeout=15000)
    wave3 = page.locator("#cf-rollout-wave-3")
    expect(wave3.locator(".cf-wave-status")).to_have_text("Failed")
    expect(wave3.locator(f"tr[data-stack='{FAILING}'] .cf-rollout-error")).not_to_be_empty()
    expect(page.locator("#cf-rollout-wave-4 .cf-wave-status")).to_have_text("Pending")
    assert page.evaluate("window.cfMarker") == 1, "the page reloaded"
    shoot(page, "rollout-halted")
    page.set_viewport_size({"width": 390, "height": 1000})
    page.wait_for_timeout(100)
    assert not overflows_horizontally(page), "the rollout page is wider than a 390 px phone"
    page.set_viewport_size({"width": 1400, "height": 1000})

    # --- roll wave 3 back (confirmed) ----------------------------------------------------------
    coolify_sim.clear_faults()
    page.click("#cf-rollout-rollback-3")
    expect(page.locator("#cf-rollout-confirm")).to_contain_text("Roll wave 3")
    shoot(page, "rollout-confirm-rollback", widths=(1400,))
    page.click("#cf-rollout-confirm-yes")
    expect(page.locator("ul.messagelist")).to_contain_text("Roll back wave 3: done")
    page.evaluate("window.cfMarker = 2")
    work_until(remote, lambda: wave_status(rollout, 3) == WaveStatus.ROLLED_BACK)
    expect(wave3.locator(".cf-wave-status")).to_have_text("Rolled back", timeout=15000)
    expect(halt).to_contain_text("The failed wave is rolled back", timeout=15000)
    expect(wave3.locator(f"tr[data-stack='{FAILING}']")).to_contain_text(f"back on {version}")
    shoot(page, "rollout-rolled-back", widths=(1400,))
    for name in ("globex", "initech"):
        stacks[name].refresh_from_db()
        assert stacks[name].template_version == version, name  # back on the old version
    assert page.evaluate("window.cfMarker") == 2, "the page reloaded"

    # --- resume to the end ---------------------------------------------------------------------
    page.click("#cf-rollout-resume")
    page.click("#cf-rollout-confirm-yes")
    expect(page.locator("ul.messagelist")).to_contain_text("Resume: done")
    work_until(remote, lambda: Rollout.objects.get(pk=rollout.pk).status != RolloutStatus.RUNNING)
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.COMPLETED, rollout.status
    expect(page.locator("#cf-rollout-status")).to_have_text("Completed", timeout=15000)
    expect(page.locator("#cf-rollout-wave-4 .cf-wave-status")).to_have_text("Passed")
    stacks["bigbank"].refresh_from_db()
    assert stacks["bigbank"].template_version == new_version
    expect(page.locator("#cf-rollout-actions")).to_have_count(0)  # nothing left to do
    expect(page.locator("#cf-rollout-left-behind")).to_contain_text("2 stacks rolled back")
    shoot(page, "rollout-completed")
