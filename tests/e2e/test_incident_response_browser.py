"""Issue 15's done-means scenario in headless Debian Chromium: support opens a SEV2
API-key-exposure incident for a tenant, an operator rotates the exposed key across the stacks
holding it from the incident page, the timeline shows each rotation, support captures evidence,
and the operator resolves the incident, writes the postmortem and exports it as Markdown.

The stacks run on the Coolify simulator with a real PocketBase; the queued work (the rotation
job, the operations, the evidence capture) is run as a qcluster worker would run it. The exposed
and the new value are searched for in every page the browser shows and in the export.
Screenshots (1400 and 390 px): artifacts/screenshots/incident-response-*.png (tests/e2e/screens.py).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from datetime import date, timedelta

import pytest
from django.utils.module_loading import import_string
from django_q.models import OrmQ
from playwright.sync_api import Page, expect

from ops.models import EscalationContact, Incident, IncidentEventKind, IncidentStatus, Severity
from ops.models.evidence import EvidenceItem
from ops.models.leaks import LeakRotation, LeakState
from stacks.choices import OperationKind, OperationStatus
from stacks.models import Stack
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import no_sleep
from tests.e2e.conftest import log_in
from tests.e2e.screens import overflows_horizontally, shoot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EXPOSED = "sk-ant-e2e15-EXPOSED-" + "Qw3Er4Ty5Ui6" * 2
NEW = "sk-ant-e2e15-ROTATED-" + "Pl9Ok8Ij7Uh6" * 2
OTHER = "sk-ant-e2e15-globex-" + "Zx1Cv2Bn3Mm4" * 2
SECRETS = (EXPOSED, NEW)
TITLE = "Anthropic API key exposure: acme's key posted in a public gist"
RUN_OPERATION_TASK = "stacks.tasks.run_operation_task"


def deployed(make_stack, remote, operator, tenant: str, name: str, secrets: dict) -> Stack:
    """A stack deployed for real on the simulator (the worker's run of its DEPLOY)."""
    stack = make_stack(tenant, name, template_name="openclaw-agent", secrets=secrets)
    operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
    assert run_operation(operation.pk, remote=remote, sleep=no_sleep)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    stack.refresh_from_db()
    return stack


def work_the_queue(remote) -> list[str]:
    """What a qcluster worker does with the queued django-q tasks, oldest first, until none is
    left: operations through the provisioning engine (simulator, real PocketBase, no sleeps),
    every other job by calling its function. Returns the functions run."""
    ran = []
    while (row := OrmQ.objects.order_by("id").first()) is not None:
        task = row.task
        row.delete()
        if task["func"] == RUN_OPERATION_TASK:
            run_operation(task["args"][0], remote=remote, sleep=no_sleep)
        else:
            import_string(task["func"])(*task["args"], **task["kwargs"])
        ran.append(task["func"])
    return ran


def coolify_envs(coolify_sim) -> dict[str, dict[str, str]]:
    return {s["uuid"]: s["envs"] for s in coolify_sim.api.snapshot()["services"]}


class SecretWatch:
    """The exposed and the new value are in no HTML the browser gets: every page it loads and
    every live-region refresh it fetches is read as it arrives, and `check` reads the page as
    it stands now (after the scripts ran)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.seen: list[str] = []
        self.leaked: list[str] = []  # URLs whose HTML held a secret (an event handler's
        page.on("response", self.read)  # exception would not fail the test: kept for check)

    def read(self, response) -> None:
        if "text/html" not in (response.headers.get("content-type") or ""):
            return
        if response.request.resource_type not in ("document", "fetch", "xhr"):
            return
        if not 200 <= response.status < 300:
            return
        self.seen.append(response.url)
        html = response.text()
        self.leaked += [response.url for secret in SECRETS if secret in html]

    def check(self) -> None:
        assert not self.leaked, f"a secret value is in the HTML of {self.leaked}"
        html = self.page.content()
        for secret in SECRETS:
            assert secret not in html, f"a secret value is in the HTML of {self.page.url}"


def pick_autocomplete(page: Page, field: str, search: str, option: str) -> None:
    """An admin autocomplete (select2) of a many-to-many field: type, then pick the option."""
    page.locator(f".field-{field} .select2-selection").click()
    page.locator(f".field-{field} .select2-search__field").press_sequentially(search)
    page.locator(".select2-results__option", has_text=option).click()


def test_support_and_operator_work_an_api_key_exposure_to_a_postmortem(
    page: Page,
    live_server,
    support,
    operator,
    make_stack,
    remote,
    coolify_sim,
    pocketbase,
    tmp_path,
):
    acme_main = deployed(
        make_stack, remote, operator, "acme", "acme-main", {"ANTHROPIC_API_KEY": EXPOSED}
    )
    acme_bot = deployed(
        make_stack, remote, operator, "acme", "acme-bot", {"ANTHROPIC_API_KEY": EXPOSED}
    )
    globex = deployed(make_stack, remote, operator, "globex", "globex-main",
                      {"ANTHROPIC_API_KEY": OTHER})  # fmt: skip
    OrmQ.objects.all().delete()  # the deploys' queued tasks: `deployed` ran them already
    before = coolify_envs(coolify_sim)
    held = {s.stack_name: before[s.coolify_service_uuid]["ANTHROPIC_API_KEY"]
            for s in (acme_main, acme_bot, globex)}  # fmt: skip
    assert held == {"acme-main": EXPOSED, "acme-bot": EXPOSED, "globex-main": OTHER}
    security = EscalationContact.objects.get(issue_type="Security Incident")
    watch = SecretWatch(page)

    # --- support opens the incident through the admin's add form -----------------------------
    log_in(page, live_server, support.username, then="/admin/ops/incident/add/")
    page.fill("#id_title", TITLE)
    page.select_option("#id_severity", Severity.SEV2.value)
    page.select_option("#id_escalation", str(security.pk))
    page.fill("#id_summary", "A customer found their ANTHROPIC_API_KEY in a public gist.")
    pick_autocomplete(page, "tenants", "acme", "acme")
    watch.check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/ops/incident/\d+/change/$"))
    incident = Incident.objects.get()
    assert (incident.severity, incident.escalation, incident.opened_by_repr) == (
        Severity.SEV2,
        security,
        "support",
    )
    assert [t.slug for t in incident.tenants.all()] == ["acme"]
    expect(page.locator("#cf-timeline")).to_contain_text(f"Opened: {TITLE}")
    # Support may not rotate: neither the button nor the page.
    expect(page.locator("#cf-leaks-start")).to_have_count(0)
    watch.check()
    incident_url = page.url
    forbidden = page.goto(f"{live_server.url}/admin/ops/incident/{incident.pk}/leaks/")
    assert forbidden is not None and forbidden.status == 403

    # --- the operator rotates the exposed value from the incident page -----------------------
    log_in(page, live_server, operator.username, then=incident_url.removeprefix(live_server.url))
    page.locator("#cf-incident-status-form input[name=note]").fill("rotating the key now")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#cf-incident-status")).to_have_text("Acknowledged")
    page.get_by_role("link", name="Find the stacks holding it…").click()
    expect(page).to_have_url(re.compile(rf"/admin/ops/incident/{incident.pk}/leaks/$"))
    watch.check()
    page.fill("#cf-leaks-exposed", EXPOSED)
    page.get_by_role("button", name="Find the stacks holding it").click()

    holdings = page.locator("#cf-leak-holdings tbody tr")
    expect(holdings).to_have_count(2)
    expect(page.locator("#content")).to_contain_text("2 live stacks of 1 tenant hold the")
    for stack in (acme_main, acme_bot):
        row = holdings.filter(has_text=stack.stack_name)
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(0)).to_have_text("acme")
        expect(row.locator("td").nth(2)).to_have_text("ANTHROPIC_API_KEY")
    expect(page.locator("#cf-leak-holdings")).not_to_contain_text("globex")
    watch.check()
    shoot(page, "incident-response-rotate-confirm")
    page.fill("#cf-leaks-new", NEW)
    page.get_by_role("button", name="Rotate on 2 stacks").click()
    expect(page).to_have_url(incident_url)
    expect(page.locator("#cf-timeline")).to_contain_text(
        "Rotation of a leaked value started: 2 stack(s) of 1 tenant(s) hold it (ANTHROPIC_API_KEY)"
    )
    watch.check()
    rotations = LeakRotation.objects.filter(incident=incident)
    assert sorted(r.stack_id for r in rotations) == sorted([acme_main.pk, acme_bot.pk])

    # The worker: the rotation job queues one ROTATE_SECRETS per stack, the operations run,
    # and the per-minute schedule's next pass notes them on the timeline.
    ran = work_the_queue(remote)
    assert ran.count(RUN_OPERATION_TASK) == 2, ran
    import_string("ops.response.leaks_jobs.advance_all_task")()
    assert [r.state for r in rotations.all()] == [LeakState.SUCCEEDED] * 2
    for rotation in rotations.select_related("operation"):
        assert rotation.operation.kind == OperationKind.ROTATE_SECRETS
        assert rotation.operation.parameters["incident_id"] == incident.pk

    page.reload()
    timeline = page.locator("#cf-timeline")
    for stack in (acme_main, acme_bot):
        expect(timeline).to_contain_text(
            f"Rotated acme/{stack.stack_name} (ANTHROPIC_API_KEY): new value pushed to Coolify "
            "and the stack restarted."
        )
    expect(page.locator("#cf-leak-rotations tbody tr.cf-leak-succeeded")).to_have_count(2)
    watch.check()
    after = coolify_envs(coolify_sim)
    for stack in (acme_main, acme_bot):
        uuid = stack.coolify_service_uuid
        assert after[uuid] == {**before[uuid], "ANTHROPIC_API_KEY": NEW}
    assert after[globex.coolify_service_uuid] == before[globex.coolify_service_uuid]
    assert globex.secrets.get(key="ANTHROPIC_API_KEY").reveal() == OTHER
    for stack in (acme_main, acme_bot):
        assert stack.secrets.get(key="ANTHROPIC_API_KEY").reveal() == NEW

    # --- the rotation linked the stacks it touched; support captures evidence of them --------
    assert set(incident.stacks.values_list("pk", flat=True)) == {acme_main.pk, acme_bot.pk}
    log_in(page, live_server, support.username, then=incident_url.removeprefix(live_server.url))
    form = page.locator("#cf-incident-evidence-form")
    expect(form.locator("input[name=stacks]:checked")).to_have_count(2)
    form.get_by_role("button", name="Capture evidence").click()
    expect(page.locator("#cf-timeline")).to_contain_text(
        "Evidence capture requested: acme-bot, acme-main."
    )
    assert "ops.response.evidence_capture.capture_job" in work_the_queue(remote)
    page.reload()
    items = EvidenceItem.objects.filter(incident=incident)
    assert {item.stack_id for item in items} == {acme_main.pk, acme_bot.pk}
    for item in items:
        assert item.sha256 == hashlib.sha256(item.content.encode()).hexdigest()
        assert EXPOSED not in item.content and NEW not in item.content
    listed = page.locator("#cf-evidence-items tbody tr")
    expect(listed).to_have_count(items.count())
    for sha256, count in Counter(items.values_list("sha256", flat=True)).items():
        hashes = page.locator(f"#cf-evidence-items code[title='{sha256}']")
        expect(hashes).to_have_count(count)  # two stacks' items can be alike (e.g. env keys)
        expect(hashes.first).to_have_text(sha256[:12])
    parts = {"service", "env_keys", "logs", "audit", "template", "operations"}
    for stack in (acme_main, acme_bot):
        assert {i.kind for i in items if i.stack_id == stack.pk} == parts
    assert not [(i.title, i.content) for i in items if i.failed]
    for stack in (acme_main, acme_bot):
        expect(page.locator("#cf-timeline")).to_contain_text(
            f"Evidence captured for {stack.stack_name}: "
        )
    watch.check()

    # --- the operator resolves, writes the postmortem and exports it ---------------------------
    log_in(page, live_server, operator.username, then=incident_url.removeprefix(live_server.url))
    page.locator("#cf-resolution").fill("Key rotated on every acme stack; the gist was removed.")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#cf-incident-status")).to_have_text("Resolved")
    postmortem = {
        "impact": "acme's two agents ran on an exposed key for about 3 hours.",
        "root_cause": "An engineer pasted a debug dump with env values into a public gist.",
        "went_well": "One paste found every stack holding the key; rotated in minutes.",
    }
    for name, text in postmortem.items():
        page.fill(f"#cf-postmortem-{name}", text)
    page.get_by_role("button", name="Save the postmortem").click()
    expect(page.locator("#cf-timeline")).to_contain_text(
        "Postmortem: wrote impact, root cause, what went well"
    )
    due = date.today() + timedelta(days=14)
    page.fill("#cf-followup-text", "Scan gists and pastes for our key prefixes")
    page.select_option("#cf-followup-owner", label="support")
    page.fill("#cf-followup-due", due.isoformat())
    page.get_by_role("button", name="Add follow-up").click()
    expect(page.locator("table.cf-postmortem-followups tbody tr")).to_contain_text(
        ["Scan gists and pastes for our key prefixes"]
    )
    watch.check()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export the incident as Markdown").click()
    download = download_info.value
    assert download.suggested_filename == f"incident-{incident.pk}-postmortem.md"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    markdown = path.read_text(encoding="utf-8")
    for secret in SECRETS:
        assert secret not in markdown
    for stack in (acme_main, acme_bot):  # the timeline's rotation lines (Markdown-escaped)
        assert (
            f"Rotated acme/{stack.stack_name} (ANTHROPIC\\_API\\_KEY): new value pushed to "
            "Coolify and the stack restarted." in markdown
        )
    for item in items:
        assert f"`{item.sha256}`" in markdown
    for heading in ("## Timeline", "## Evidence", "## Postmortem", "### Impact",
                    "### Root cause", "### What went well", "### Follow-ups"):  # fmt: skip
        assert f"\n{heading}\n" in markdown
    for text in postmortem.values():
        assert text.replace("_", "\\_") in markdown.replace("  \n", "\n")
    assert (
        f"| Scan gists and pastes for our key prefixes | support | {due:%Y-%m-%d} | open |"
        in markdown
    )

    # The incident page as it ends, at a desk and on a phone.
    page.reload()
    watch.check()
    shoot(page, "incident-response-resolved")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    kinds = set(incident.events.values_list("kind", flat=True))
    assert {
        IncidentEventKind.ROTATION,
        IncidentEventKind.EVIDENCE,
        IncidentEventKind.POSTMORTEM,
    } <= kinds
    assert len(watch.seen) >= 15, watch.seen
    assert any("/leaks/rotate/" in url for url in watch.seen)
    page.set_viewport_size({"width": 390, "height": 1000})
    page.wait_for_timeout(100)
    # Each panel's table may scroll sideways inside its panel, never widen the page.
    assert not overflows_horizontally(page), "the incident page is wider than a 390 px phone"
