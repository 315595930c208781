"""Hardening in headless Debian Chromium: the admin's pages run under the Content-Security-Policy
without a single violation and their scripts still work; an operator enrols a TOTP app at first
login; a locked-out login gets a page that says what happened."""

from __future__ import annotations

import base64
import importlib
import re

import pytest
from django.apps import apps as django_apps
from django.utils import timezone
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from ops import checklists, incidents
from ops.health import CheckOutcome, record
from ops.models import Incident, Procedure
from ops.procedures import DAILY_HEALTH_CHECK
from stacks.choices import OperationKind, OperationStatus, StepOutcome
from stacks.models import Operation, OperationStep
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAGES_SHOT = "/tmp/cfadmin-csp-stack-page.png"
DASHBOARD_SHOT = "/tmp/cfadmin-csp-dashboard.png"
ENROL_SHOT = "/tmp/cfadmin-mfa-enrol.png"
CODES_SHOT = "/tmp/cfadmin-mfa-recovery-codes.png"
LOCKOUT_SHOT = "/tmp/cfadmin-lockout.png"

# Recorded in the page before any of its own scripts run (Playwright's init scripts are not
# subject to the page's CSP).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sample);
});
"""


class Watch:
    """Console errors and CSP violations of one browser page, across navigations."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        self.violations: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def _console(self, message) -> None:
        if message.type in ("error", "warning") or "Refused to" in message.text:
            self.console.append(f"{message.type}: {message.text}")

    def visit(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_load_state("networkidle")
        self.collect()

    def collect(self) -> None:
        self.violations += self.page.evaluate("window.__csp || []")

    def assert_clean(self) -> None:
        self.collect()
        refused = [m for m in self.console if "Refused to" in m or "Content Security" in m]
        assert self.violations == [], self.violations
        assert refused == [], refused
        assert [m for m in self.console if m.startswith("pageerror")] == []


def log_in(page: Page, live_server, username: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


@pytest.fixture
def subjects(make_stack, superuser):
    if not Procedure.objects.filter(slug=DAILY_HEALTH_CHECK, active=True).exists():
        importlib.import_module("ops.migrations.0003_seed_runbook").seed(django_apps, None)
    stack = make_stack(domains={"webui": "demo.customer123.com"})
    operation = Operation.objects.create(
        stack=stack,
        kind=OperationKind.RESTART,
        status=OperationStatus.RUNNING,
        requested_by_repr="root",
        current_step="restart_service",
        started_at=timezone.now(),
    )
    for status in ("ok", "down"):
        record([CheckOutcome("coolify_api", status, f"Coolify API {status}", True, {}, 12)])
    incident = Incident(title="API slow", severity="sev2")
    incidents.prepare_new(incident, actor=superuser)
    incident.save()
    run = checklists.start_run(checklists.active_procedure(DAILY_HEALTH_CHECK), actor=superuser)
    return {
        "stack": stack,
        "operation": operation,
        "incident": incident,
        "run": run,
        "user": superuser,
    }


def test_admin_pages_run_under_the_csp_and_their_scripts_work(page: Page, live_server, subjects):
    watch = Watch(page)
    log_in(page, live_server, "root")
    expect(page).to_have_url(f"{live_server.url}/admin/")
    base = live_server.url
    stack, run, incident = subjects["stack"], subjects["run"], subjects["incident"]
    for path in (
        "/admin/",
        "/admin/stacks/stack/",
        "/admin/stacks/stack/deploy/",
        "/admin/stacks/stack/deploy/?tenant=customer-123&template=openclaw-agent",
        f"/admin/ops/checklistrun/{run.pk}/change/",
        f"/admin/ops/incident/{incident.pk}/change/",
        "/admin/ops/incident/add/",
        f"/admin/tenants/tenant/{stack.tenant_id}/change/",
        "/admin/cfadmin/auditevent/",
        f"/admin/auth/user/{subjects['user'].pk}/change/",
        "/admin/mfa/enrol/",
    ):
        watch.visit(base + path)
        expect(page.locator("#header")).to_be_visible()
    watch.visit(f"{base}/admin/ops/healthcheckresult/dashboard/")
    # The badge's colour comes from cfadmin.css, not a style attribute.
    badge = page.locator("#cf-checks .cf-check-down").first
    expect(badge).to_have_css("background-color", "rgb(220, 53, 69)")
    page.screenshot(path=DASHBOARD_SHOT, full_page=True)

    # Django's own admin scripts: the tenant autocomplete (select2 + jQuery) on the incident
    # form (stacks have no add form: they are made by a deploy).
    watch.visit(f"{base}/admin/ops/incident/add/")
    page.click(".field-tenants .select2-selection")
    page.keyboard.type("customer")
    expect(page.locator(".select2-results__option", has_text="customer-123")).to_have_count(1)

    # The stack page follows its running operation (its live region, htmx and live.js): new
    # steps appear in place, and its end shows without a reload.
    watch.visit(f"{base}/admin/stacks/stack/{stack.pk}/change/")
    progress = page.locator("#cf-operation-progress")
    expect(progress).to_contain_text("step restart_service")
    expect(page.locator("#cf-stack-operations .cf-status, .cf-op-status").first).to_be_visible()
    OperationStep.objects.create(
        operation=subjects["operation"],
        position=1,
        name="stop_service",
        outcome=StepOutcome.DONE,
        started_at=timezone.now(),
        duration_ms=5,
    )
    expect(progress).to_contain_text("stop_service", timeout=6000)
    Operation.objects.filter(pk=subjects["operation"].pk).update(
        status=OperationStatus.SUCCEEDED, finished_at=timezone.now(), duration_ms=900
    )
    expect(page.locator(".cf-op-status")).to_have_text("Succeeded", timeout=8000)
    expect(page.locator(".cf-operation")).to_have_attribute("data-in-flight", "0")
    page.screenshot(path=PAGES_SHOT, full_page=True)
    watch.assert_clean()


def current_code(key_text: str) -> str:
    key = base64.b32decode(key_text.replace(" ", ""))
    return f"{totp(key, step=30, t0=0, digits=6, drift=0):06d}"


def test_an_operator_enrols_a_totp_app_at_first_login(page: Page, live_server, operator, settings):
    settings.MFA_ENFORCED = True
    watch = Watch(page)
    log_in(page, live_server, "operator")

    expect(page).to_have_url(re.compile(r"/admin/mfa/enrol/\?next=%2Fadmin%2F$"))
    expect(page.locator("#cf-mfa-qr svg")).to_be_visible()
    key = page.locator("#cf-mfa-key").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})+", key)
    page.screenshot(path=ENROL_SHOT, full_page=True)
    # No admin page opens meanwhile.
    page.goto(f"{live_server.url}/admin/stacks/stack/")
    expect(page).to_have_url(re.compile(r"/admin/mfa/enrol/\?next="))

    page.fill("#id_code", current_code(key))
    page.click("#cf-mfa-enrol-form input[type=submit]")

    expect(page.locator("#cf-recovery-codes li")).to_have_count(10)
    page.screenshot(path=CODES_SHOT, full_page=True)
    page.click("#cf-mfa-continue")
    expect(page).to_have_url(f"{live_server.url}/admin/stacks/stack/")
    expect(page.locator("#changelist")).to_be_visible()
    watch.assert_clean()


def test_a_locked_out_login_says_what_happened(page: Page, live_server, viewer):
    watch = Watch(page)
    page.set_viewport_size({"width": 1200, "height": 800})

    def attempt(password: str) -> None:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "viewer")
        page.fill("#id_password", password)
        page.click("input[type=submit]")

    for _ in range(4):
        attempt("not-the-password")
        expect(page.locator(".errornote")).to_contain_text("Please enter the correct username")
    attempt("not-the-password")  # the fifth: locked out from now on
    expect(page.locator(".cf-lockout")).to_be_visible()

    attempt(PASSWORD)

    expect(page.locator(".cf-lockout .errornote")).to_contain_text(
        "Login refused: too many failed logins for viewer"
    )
    expect(page.locator(".cf-lockout")).to_contain_text("Ask a cfadmin admin to clear the lockout")
    page.screenshot(path=LOCKOUT_SHOT, full_page=True)
    watch.assert_clean()
