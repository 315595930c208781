"""The audit trail's sidebar at scale, in headless Debian Chromium: a viewer narrows the trail to
the last 24 hours, to one staff user, and to a typed date range, and reads the checklist runs
list with each run's progress (counted by the database, not by loading items).
"""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from cfadmin.models import AuditAction, AuditEvent
from ops import checklists
from ops.checklists import active_procedure
from ops.models import ChecklistItem, ItemState, Procedure
from ops.procedures import POST_DEPLOY
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FILTERS_SHOT = "/tmp/cfadmin-audit-filters.png"
RUNS_SHOT = "/tmp/cfadmin-checklist-runs.png"


@pytest.fixture
def runbook() -> None:
    """The seeded procedures (a transactional test before this one may have flushed them)."""
    if not Procedure.objects.filter(slug=POST_DEPLOY, active=True).exists():
        importlib.import_module("ops.migrations.0003_seed_runbook").seed(django_apps, None)


@pytest.fixture
def trail(operator, support) -> None:
    """Events an hour apart over three days, by two staff users and the command line."""
    now = timezone.now()
    actors = [operator, support, None]
    for i in range(72):
        actor = actors[i % 3]
        event = AuditEvent.objects.create(
            actor=actor,
            actor_repr=actor.username if actor else "cli:deployer",
            action=AuditAction.OPERATION if i % 2 else AuditAction.UPDATE,
            target_repr=f"customer-{i % 4}/customer-{i % 4}-main",
            tenant_slug=f"customer-{i % 4}",
            stack_name=f"customer-{i % 4}-main",
            message=f"Restart requested ({i})",
        )
        AuditEvent.objects.filter(pk=event.pk).update(occurred_at=now - timedelta(hours=i))


def viewer_page(page: Page, live_server, viewer: User) -> Page:
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", viewer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/admin/")
    return page


def rows(page: Page) -> int:
    return page.locator("#result_list tbody tr").count()


def test_a_viewer_narrows_the_audit_trail_by_period_user_and_date_range(
    page: Page, live_server, viewer, operator, trail
):
    page = viewer_page(page, live_server, viewer)
    page.goto(f"{live_server.url}/admin/cfadmin/auditevent/")
    sidebar = page.locator("#changelist-filter")
    expect(sidebar.get_by_role("link", name="Last 24 hours")).to_be_visible()
    expect(sidebar.get_by_role("link", name="operator", exact=True)).to_be_visible()

    sidebar.get_by_role("link", name="Last 24 hours").click()
    expect(page).to_have_url(re.compile(r"occurred_at__within=24h"))
    # 24 of the trail's events and the viewer's own login.
    assert rows(page) == 25

    page.locator("#changelist-filter").get_by_role("link", name="operator", exact=True).click()
    expect(page).to_have_url(re.compile(rf"actor__id__exact={operator.pk}"))
    actors = page.locator("#result_list tbody td.field-actor_repr").all_inner_texts()
    assert actors and set(actors) == {"operator"}
    assert "occurred_at__within=24h" in page.url  # the other filter is kept

    page.goto(f"{live_server.url}/admin/cfadmin/auditevent/?actor=cli%3Adeployer")
    yesterday = timezone.localdate() - timedelta(days=1)
    form = page.locator("form.cfadmin-range-filter")
    form.locator("input[name=occurred_at__gte]").fill(yesterday.isoformat())
    form.locator("input[name=occurred_at__lte]").fill(yesterday.isoformat())
    form.get_by_role("button", name="Filter dates").click()
    expect(page).to_have_url(re.compile(r"occurred_at__gte="))
    assert "actor=cli%3Adeployer" in page.url, page.url
    dates = page.locator("#result_list tbody th.field-occurred_at").all_inner_texts()
    actors = page.locator("#result_list tbody td.field-actor_repr").all_inner_texts()
    assert dates and set(actors) == {"cli:deployer"}
    assert len(dates) == 8  # yesterday: 24 consecutive hours, every third one by the shell
    page.screenshot(path=FILTERS_SHOT, full_page=True)


def test_the_checklist_runs_list_shows_progress(
    page: Page, live_server, viewer, make_stack, runbook
):
    procedure = active_procedure(POST_DEPLOY)
    for i in range(12):
        stack = make_stack(f"customer-{i}", f"customer-{i}-main")
        run = checklists.start_run(procedure, actor="cli:deployer", stack=stack)
        ChecklistItem.objects.filter(run=run, step__position__lte=i % 6).update(
            state=ItemState.DONE, evidence={"output": "ok " * 500}
        )
    page = viewer_page(page, live_server, viewer)
    page.goto(f"{live_server.url}/admin/ops/checklistrun/")
    progress = page.locator("#result_list tbody td.field-progress_display").all_inner_texts()
    assert len(progress) == 12 and "0/5" in progress and "5/5" in progress
    page.screenshot(path=RUNS_SHOT, full_page=True)
