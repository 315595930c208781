"""The runbook's daily health check in headless Debian Chromium: a support person opens the
Operations dashboard, starts the run, ticks steps with notes, skips one (a reason is required),
lets cfadmin verify the last one, and sees the run completed.
"""

from __future__ import annotations

import importlib
import re

import pytest
from django.apps import apps as django_apps
from django.utils import timezone
from playwright.sync_api import Page, expect

from ops.health import CheckOutcome, record
from ops.models import ChecklistItem, ChecklistRun, ItemState, Procedure, RunStatus
from ops.procedures import DAILY_HEALTH_CHECK
from ops.tasks import run_checklist_probes_task
from tests.integration.test_health_checks import write_df_script

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DASHBOARD_SHOT = "/tmp/cfadmin-ops-dashboard.png"
COMPLETED_SHOT = "/tmp/cfadmin-ops-run-completed.png"
REFUSED_SHOT = "/tmp/cfadmin-ops-run-skip-refused.png"


@pytest.fixture
def runbook():
    if not Procedure.objects.filter(slug=DAILY_HEALTH_CHECK, active=True).exists():
        importlib.import_module("ops.migrations.0003_seed_runbook").seed(django_apps, None)


@pytest.fixture
def health_history():
    """A little history so the dashboard shows what an operator sees: a recovered outage."""
    for pocketbase in ("down", "down", "ok"):
        record(
            [
                CheckOutcome("coolify_api", "ok", "Coolify API OK (version 4.0.0)", True, {}, 12),
                CheckOutcome(
                    "pocketbase",
                    pocketbase,
                    "PocketBase OK (healthy, service login works)"
                    if pocketbase == "ok"
                    else "PocketBase: cannot connect to http://127.0.0.1:8090",
                    True,
                    {},
                    8 if pocketbase == "ok" else 3,
                ),
                CheckOutcome("disk_usage", "warning", "Disk / at 85%", False, {}, 40),
            ]
        )


def row(page: Page, item: ChecklistItem):
    return page.locator(f"#item-{item.pk}")


def settle(page: Page, item: ChecklistItem, button: str, note: str = "") -> None:
    line = row(page, item)
    line.locator("input[name=note]").fill(note)
    line.get_by_role("button", name=button, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/admin/ops/checklistrun/\d+/change/#item-{item.pk}$"))


def test_support_runs_the_daily_health_check_to_completion(
    support_page: Page, live_server, runbook, health_history, settings, tmp_path
):
    page = support_page
    settings.HEALTHCHECK_DISK_COMMAND = write_df_script(tmp_path, {"/": 42})
    settings.HEALTHCHECK_TIMEOUT = 3.0

    # The admin index leads to the Operations dashboard.
    page.locator("#cf-ops-links").get_by_role("link", name="Operations dashboard").click()
    expect(page).to_have_url(f"{live_server.url}/admin/ops/healthcheckresult/dashboard/")
    expect(page.locator("#cf-checks tr[data-check=pocketbase]")).to_contain_text("OK")
    expect(page.locator("#cf-outages")).to_contain_text("pocketbase")
    expect(page.locator("#cf-contacts")).to_contain_text("Security Team")
    page.screenshot(path=DASHBOARD_SHOT, full_page=True)

    # Start the daily health check. No worker runs here: its automatic checks stay queued.
    page.locator("#cf-procedures tr", has_text="Daily health check").get_by_role(
        "button", name="Start a run"
    ).click()
    expect(page).to_have_url(re.compile(r"/admin/ops/checklistrun/\d+/change/$"))
    run = ChecklistRun.objects.get()
    assert run.procedure.slug == DAILY_HEALTH_CHECK and run.started_by_repr == "support"
    coolify, pocketbase, stacks, disk = run.items.order_by("step__position")
    expect(page.locator("#cf-run-status")).to_contain_text("0 of 4 steps settled")
    expect(page.locator("#cf-items")).to_contain_text(
        "curl -f https://$COOLIFY_HOST/api/v1/projects"
    )

    # Tick two steps with a note each.
    settle(page, coolify, "Done", "curl -f /api/v1/projects → 200")
    expect(row(page, coolify).locator(".cf-item-state")).to_contain_text("Done")
    expect(row(page, coolify)).to_contain_text("curl -f /api/v1/projects → 200")
    settle(page, pocketbase, "Done", "api/health says healthy")
    expect(row(page, pocketbase).locator(".cf-item-state")).to_contain_text("Done")
    expect(page.locator("#cf-run-status")).to_contain_text("2 of 4 steps settled")

    # Skipping needs a reason: without one it is refused and the step stays to do.
    settle(page, stacks, "Skip")
    expect(page.locator("ul.messagelist")).to_contain_text("Say why you skip this step.")
    expect(row(page, stacks).locator(".cf-item-state")).to_contain_text("To do")
    stacks.refresh_from_db()
    assert stacks.state == ItemState.PENDING
    page.screenshot(path=REFUSED_SHOT, full_page=True)

    settle(page, stacks, "Skip", "no shell on the Docker host today; counted in Coolify's UI")
    expect(row(page, stacks).locator(".cf-item-state")).to_contain_text("Skipped")
    expect(row(page, stacks)).to_contain_text("no shell on the Docker host today")

    # The last step is cfadmin's to verify. Its checks were queued when the run started, so
    # asking again is refused (each run of them spends Coolify calls) until a worker runs them.
    page.get_by_role("button", name="Run the automatic checks again").click()
    expect(page.locator("ul.messagelist")).to_contain_text(
        "Automatic checks: one is already queued (requested by support"
    )
    assert run_checklist_probes_task(run.pk) == 1  # the worker takes the queued task
    page.reload()

    expect(page.locator("#cf-run-status")).to_contain_text("Completed")
    expect(page.locator("#cf-run")).to_have_attribute("data-status", "completed")
    expect(row(page, disk).locator(".cf-item-state")).to_contain_text("Verified automatically")
    expect(page.get_by_role("button", name="Done")).to_have_count(0)
    page.screenshot(path=COMPLETED_SHOT, full_page=True)

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.completed_at is not None and run.completed_at <= timezone.now()
    states = dict(run.items.values_list("step__position", "state"))
    assert states == {
        1: ItemState.DONE,
        2: ItemState.DONE,
        3: ItemState.SKIPPED,
        4: ItemState.PASSED,
    }
    disk.refresh_from_db()
    assert disk.evidence["message"] == "Disk / at 42%"
    stacks.refresh_from_db()
    assert stacks.settled_by.username == "support"
