"""Content-Security-Policy: every page carries it, and no page needs what it forbids (inline
script, inline style, event-handler attributes). The browser check is
tests/e2e/test_security_browser.py."""

from __future__ import annotations

import importlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import reverse

from cfadmin.security.lockout import lockout_response
from ops import checklists, incidents
from ops.health import CheckOutcome, record
from ops.models import Incident, Procedure
from ops.procedures import DAILY_HEALTH_CHECK
from stacks.choices import OperationKind, OperationStatus
from stacks.models import Operation, ReconcileRun

pytestmark = pytest.mark.django_db

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
}


class InlineFinder(HTMLParser):
    """Collects what the policy would block: style attributes, <style>, inline <script>, on*=."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script_open = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        names = {name for name, _ in attrs}
        attributes = dict(attrs)
        if "style" in names:
            self.found.append(f"<{tag} style={attributes['style']!r}>")
        self.found += [f"<{tag} {n}=...>" for n in names if n.startswith("on")]
        if tag == "style":
            self.found.append("<style> element")
        self._script_open = (
            tag == "script"
            and "src" not in names
            and (attributes.get("type") != "application/json")
        )

    def handle_data(self, data: str) -> None:
        if self._script_open and data.strip():
            self.found.append(f"inline <script>: {data.strip()[:60]}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script_open = False


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def inline_parts(html: str) -> list[str]:
    finder = InlineFinder()
    finder.feed(html)
    return finder.found


@pytest.fixture
def everything(make_stack, superuser):
    """One of each page's subject: a stack with an operation running, a health history with an
    ongoing outage, an incident, a checklist run, a reconcile report."""
    if not Procedure.objects.filter(slug=DAILY_HEALTH_CHECK, active=True).exists():
        importlib.import_module("ops.migrations.0003_seed_runbook").seed(django_apps, None)
    stack = make_stack(domains={"webui": "demo.customer123.com"}, secrets={"API_KEY": "sk-x-1"})
    Operation.objects.create(
        stack=stack,
        kind=OperationKind.RESTART,
        status=OperationStatus.RUNNING,
        requested_by_repr="root",
        current_step="restart",
        error="",
    )
    for status in ("down", "down"):
        record([CheckOutcome("pocketbase", status, "PocketBase: cannot connect", True, {}, 3)])
    incident = Incident(title="API slow", severity="sev2")
    incidents.prepare_new(incident, actor=superuser)
    incident.save()
    run = checklists.start_run(checklists.active_procedure(DAILY_HEALTH_CHECK), actor=superuser)
    ReconcileRun.objects.create(requested_by_repr="root", error="Coolify did not answer")
    return {"stack": stack, "incident": incident, "run": run}


def pages(everything) -> list[str]:
    stack, incident, run = everything["stack"], everything["incident"], everything["run"]
    return [
        "/admin/",
        "/admin/stacks/stack/",
        "/admin/stacks/stack/?status__exact=running",
        f"/admin/stacks/stack/{stack.pk}/change/",
        reverse("admin:stacks_stack_progress", args=[stack.pk]),
        "/admin/stacks/stack/deploy/",
        "/admin/stacks/stack/deploy/?tenant=customer-123&template=openclaw-agent",
        reverse("admin:stacks_templates"),
        reverse("admin:stacks_template", args=["openclaw-agent"]),
        reverse("admin:stacks_reconcile"),
        "/admin/tenants/tenant/",
        f"/admin/tenants/tenant/{stack.tenant_id}/change/",
        reverse("admin:tenants_tenant_stacks", args=[stack.tenant_id]),
        "/admin/cfadmin/auditevent/",  # a list without actions
        reverse("admin:ops_dashboard"),
        f"/admin/ops/incident/{incident.pk}/change/",
        "/admin/ops/incident/",
        f"/admin/ops/checklistrun/{run.pk}/change/",
        f"/admin/ops/procedure/{run.procedure_id}/change/",
        "/admin/auth/user/",
        "/admin/auth/user/add/",
        "/admin/axes/accessattempt/",
        "/admin/mfa/enrol/",
    ]


def test_every_admin_page_carries_the_policy_and_needs_nothing_it_forbids(
    client, superuser, everything
):
    client.force_login(superuser)
    for url in pages(everything):
        response = client.get(url)
        assert response.status_code == 200, url
        assert policy(response) == POLICY, url
        assert inline_parts(response.content.decode()) == [], url


def test_the_login_and_lockout_pages_carry_the_policy_too(client):
    response = client.get("/admin/login/")
    assert policy(response) == POLICY
    assert inline_parts(response.content.decode()) == []

    request = RequestFactory().post("/admin/login/", {"username": "someone"})
    request.user = AnonymousUser()
    lockout = lockout_response(request, None, {"username": "someone"})
    assert lockout.status_code == 429
    assert inline_parts(lockout.content.decode()) == []


def test_the_policy_allows_no_inline_script_or_style(client):
    header = client.get("/admin/login/")["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header


@pytest.mark.parametrize(
    "template",
    sorted(TEMPLATES_DIR.rglob("*.html")),
    ids=lambda p: str(p.relative_to(TEMPLATES_DIR)),
)
def test_no_template_has_inline_script_or_style(template):
    assert inline_parts(template.read_text()) == []
