"""The runbook's procedures as checklists: seeded with their steps and commands, the escalation
table, the validation runs a deploy and a delete open by themselves (their automatic items
checked against the Coolify simulator, a real PocketBase and a local TLS server), the rules for
people settling items, and who may do what in the admin.
"""

from __future__ import annotations

import importlib
import socket
import time
from html import unescape

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.urls import reverse

from cfadmin.models import AuditEvent
from ops import checklists
from ops.checklists import command_for, run_probes, settle_item, start_run
from ops.models import (
    ChecklistItem,
    ChecklistRun,
    EscalationContact,
    ItemState,
    Procedure,
    RunStatus,
)
from ops.procedures import DAILY_HEALTH_CHECK, POST_DELETE, POST_DEPLOY
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import brief_sleep
from tests.integration.test_health_checks import TLSServer, make_pki

pytestmark = pytest.mark.integration

DOMAIN = "demo.customer123.com"
STACK = "customer-123/customer-123-main"
COMPOSE_KEY = "cf-agent-customer-123-customer-123-main"  # openclaw-agent's webui service
ANTHROPIC_KEY = "sk-test-checklists-0123456789abcdefghij"

# The runbook (shared/seed/000_…: OPERATOR RUNBOOK), procedure by procedure: the words each
# step starts from, in the runbook's order, and the command beside it (None: not checked here).
RUNBOOK: dict[str, tuple[str, str, list[tuple[str, str | None]]]] = {
    POST_DEPLOY: (
        "Post-deploy validation",
        "validation",
        [
            ("Service appears in Coolify", "/api/v1/services/{service_uuid}"),
            ("Domain resolves", "dig +short {domain}"),
            ("serves HTTPS", "curl -sI https://{domain}"),
            ('PocketBase record created with status "running"', "agent_stacks/records"),
            ("Container logs show successful startup", "docker logs {container}"),
        ],
    ),
    POST_DELETE: (
        "Post-delete validation",
        "validation",
        [
            ("Service removed from Coolify", "/api/v1/services/{service_uuid}"),
            ("Domain no longer", "curl -sI https://{domain}"),
            ("PocketBase record deleted", "agent_stacks/records"),
            ("Docker volumes cleaned up", "docker volume ls | grep cf-agent-{tenant}"),
        ],
    ),
    DAILY_HEALTH_CHECK: (
        "Daily health check",
        "monitoring",
        [
            ("Coolify API", "curl -f https://$COOLIFY_HOST/api/v1/projects >/dev/null"),
            ("PocketBase", "curl -f $POCKETBASE_URL/api/health >/dev/null"),
            ("Count active stacks", "docker ps | grep -c cf-agent"),
            ("Check disk usage", "df -h | grep -E '(Filesystem|/$)'"),
        ],
    ),
    "weekly-resource-check": (
        "Weekly resource check",
        "monitoring",
        [
            ("Container resource usage", "docker stats --no-stream | head -10"),
            ("Disk usage by project", "du -sh /var/lib/docker/volumes/*_cf-* | sort -h"),
            ("Top resource consumers", "| head -20"),
        ],
    ),
    "weekly-template-updates": (
        "Weekly template updates",
        "maintenance",
        [
            ("Test locally", "--dry-run"),
            ("Deploy to staging", None),
            ("Validate security", "audit_templates"),
            ("Document changes", None),
            ("Gradual rollout", None),
        ],
    ),
    "monthly-coolify-updates": (
        "Monthly Coolify updates",
        "maintenance",
        [
            ("Announce maintenance", None),
            ("Backup critical data", None),
            ("Update Coolify", None),
            ("Restart services", None),
            ("Health check", "python manage.py healthcheck"),
            ("Monitor", None),
        ],
    ),
    "complete-service-outage": (
        "Complete service outage",
        "emergency",
        [
            ("Immediate", None),
            ("SSH to", "ssh root@$COOLIFY_HOST"),
            ("Check system status", "systemctl status coolify"),
            ("Restart if needed", "systemctl restart coolify"),
            ("Verify", None),
        ],
    ),
    "mass-container-failures": (
        "Mass container failures",
        "emergency",
        [
            ("Check server resources", "df -h && free -h"),
            ("Identify", None),
            (
                "Emergency stop",
                "docker ps | grep cf-webui | awk '{{print $1}}' | xargs docker stop",
            ),
            ("Gradual restart", None),
        ],
    ),
    "data-recovery": (
        "Data recovery",
        "emergency",
        [
            ("Don't panic", None),
            ("List volumes", "docker volume ls | grep cf-agent-{tenant}"),
            ("If the volume exists", None),
            ("If the volume is gone", None),
            ("Communicate", None),
        ],
    ),
    "suspected-container-compromise": (
        "Suspected container compromise",
        "security",
        [
            ("Isolate immediately", "docker network disconnect {service_uuid} {container}"),
            ("Capture state", "docker exec {container} ps aux > incident-"),
            ("Stop the container", "docker stop {containers}"),
            ("Preserve evidence", "docker commit {container}"),
            ("Notify", None),
            ("Investigate", None),
        ],
    ),
    "api-key-exposure": (
        "API key exposure",
        "security",
        [
            ("Rotate immediately", None),
            ("Update the stack", None),
            ("Audit access", None),
            ("Document", None),
        ],
    ),
}


def seed_runbook() -> None:
    """Migrations seeded the runbook; a transactional test before this one flushed it."""
    importlib.import_module("ops.migrations.0003_seed_runbook").seed(django_apps, None)


@pytest.fixture
def runbook():
    if not Procedure.objects.filter(slug=POST_DEPLOY, active=True).exists():
        seed_runbook()


def procedure(slug: str) -> Procedure:
    return Procedure.objects.get(slug=slug, active=True)


def items_by_probe(run: ChecklistRun) -> dict[str, ChecklistItem]:
    return {item.step.probe or item.step.text: item for item in run.items.select_related("step")}


# --- the runbook, seeded ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("slug", list(RUNBOOK))
def test_every_runbook_procedure_is_present_with_its_steps_in_order(runbook, slug):
    title, category, expected = RUNBOOK[slug]

    proc = procedure(slug)

    assert (proc.title, proc.category, proc.version) == (title, category, 1)
    assert proc.when
    steps = list(proc.steps.order_by("position"))
    assert [s.position for s in steps] == list(range(1, len(expected) + 1))
    for step, (words, command) in zip(steps, expected, strict=True):
        assert words.lower() in step.text.lower(), (step.position, step.text)
        if command is not None:
            assert command in step.command, (step.position, step.command)


@pytest.mark.django_db
def test_the_runbook_has_exactly_these_procedures(runbook):
    assert set(Procedure.objects.filter(active=True).values_list("slug", flat=True)) == set(RUNBOOK)


@pytest.mark.django_db
def test_the_validation_steps_are_checked_by_cfadmin(runbook):
    def probes(slug: str) -> list[str]:
        return list(procedure(slug).steps.order_by("position").values_list("probe", flat=True))

    assert probes(POST_DEPLOY) == [
        "service_present",
        "domain_resolves",
        "https_serves",
        "record_running",
        "logs_show_startup",
    ]
    assert probes(POST_DELETE) == ["service_gone", "domain_not_served", "record_gone", ""]
    assert probes(DAILY_HEALTH_CHECK) == [
        "coolify_api",
        "pocketbase_health",
        "active_stacks",
        "disk_usage",
    ]
    # Coolify answering and the stacks running again are checked by cfadmin (issue 15), the
    # status page update too (issue 16).
    assert probes("complete-service-outage") == [
        "status_update_posted",
        "",
        "coolify_api",
        "",
        "active_stacks",
    ]


@pytest.mark.django_db
def test_escalation_contacts_are_seeded(runbook):
    rows = {
        c.issue_type: (c.team, c.response_target, c.business_hours_only)
        for c in EscalationContact.objects.all()
    }

    assert rows == {
        "Platform Down": ("Platform Team", "30min", False),
        "Security Incident": ("Security Team", "15min", False),
        "Customer Data Loss": ("Backup Team", "1h", False),
        "Billing Issues": ("Billing Team", "4h business", True),
    }
    # The most urgent first.
    assert EscalationContact.objects.first().issue_type == "Security Incident"


@pytest.mark.django_db
def test_seeding_again_adds_nothing(runbook):
    counts = (Procedure.objects.count(), EscalationContact.objects.count())
    steps = sorted(Procedure.objects.values_list("slug", "steps__position"))

    seed_runbook()

    assert (Procedure.objects.count(), EscalationContact.objects.count()) == counts
    assert sorted(Procedure.objects.values_list("slug", "steps__position")) == steps


@pytest.mark.django_db
def test_commands_are_filled_in_for_the_runs_stack(runbook, make_stack):
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        coolify_service_uuid="svc0uuid0customer0123000",
        domains={"webui": DOMAIN},
    )
    deploy_run = start_run(procedure(POST_DEPLOY), actor="test", stack=stack)
    compromise = start_run(procedure("suspected-container-compromise"), actor="test", stack=stack)
    mass = start_run(procedure("mass-container-failures"), actor="test")
    weekly = start_run(procedure("weekly-resource-check"), actor="test")

    def commands(run: ChecklistRun) -> list[str]:
        return [
            command_for(item.step.command, run)
            for item in run.items.select_related("step").order_by("step__position")
        ]

    deploy_commands = commands(deploy_run)
    assert deploy_commands[0].endswith("/api/v1/services/svc0uuid0customer0123000")
    assert deploy_commands[1] == f"dig +short {DOMAIN}"
    assert deploy_commands[2] == f"curl -sI https://{DOMAIN}"
    assert "stack_name='customer-123-main'" in deploy_commands[3]
    # Coolify names containers `<compose service>-<service uuid>` (parsers.php).
    container = "cf-agent-customer-123-customer-123-main-svc0uuid0customer0123000"
    assert deploy_commands[4] == f"docker logs {container}"
    assert commands(compromise)[0] == (
        f"docker network disconnect svc0uuid0customer0123000 {container}"
    )
    assert commands(compromise)[1].startswith(f"docker exec {container} ps aux")
    assert commands(compromise)[2].endswith(f"docker stop {container})")
    assert "docker ps | grep cf-webui | awk '{print $1}' | xargs docker stop" in commands(mass)[2]
    assert commands(weekly)[2] == ('docker ps --format "table {{.Names}}\\t{{.Status}}" | head -20')
    # Without a stack, placeholders stay as they are for the person to fill in.
    assert commands(start_run(procedure("data-recovery"), actor="test"))[1] == (
        "docker volume ls | grep cf-agent-{tenant}"
    )


@pytest.mark.django_db
def test_seeded_procedures_with_old_container_names_get_a_new_version(runbook):
    """A database seeded before Coolify's real container names were known gets version 2 of each
    procedure whose commands named `cf-agent-<stack>`; version 1 stays for its old runs."""
    migration = importlib.import_module("ops.migrations.0005_server_names_in_procedures")
    v1 = procedure("suspected-container-compromise")
    v1.steps.filter(position=1).update(command="docker network disconnect coolify cf-agent-{stack}")
    untouched = procedure(POST_DELETE).pk

    migration.new_versions(django_apps, None)

    v2 = procedure("suspected-container-compromise")
    assert (v2.version, v1.version) == (v1.version + 1, v1.version)
    assert v2.steps.get(position=1).command == (
        "docker network disconnect {service_uuid} {container}"
    )
    assert list(v2.steps.values_list("text", flat=True)) == list(
        v1.steps.values_list("text", flat=True)
    )
    assert procedure(POST_DELETE).pk == untouched
    migration.new_versions(django_apps, None)  # nothing left to replace: no version 3
    assert procedure("suspected-container-compromise").pk == v2.pk


# --- the rules for people settling items -----------------------------------------------------


@pytest.mark.django_db
def test_skip_needs_a_reason_and_done_does_not(runbook, support):
    run = start_run(procedure("weekly-resource-check"), actor=support)
    first, second, third = run.items.order_by("step__position")

    with pytest.raises(ValidationError, match="Say why you skip"):
        settle_item(first, ItemState.SKIPPED, actor=support, note="   ")
    first.refresh_from_db()
    assert first.state == ItemState.PENDING

    settle_item(first, ItemState.SKIPPED, actor=support, note="docker stats hangs on this host")
    settle_item(second, ItemState.DONE, actor=support)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.note) == (ItemState.SKIPPED, "docker stats hangs on this host")
    assert (second.state, second.note, second.settled_by) == (ItemState.DONE, "", support)

    with pytest.raises(ValidationError, match="Only a failed automatic check"):
        settle_item(third, ItemState.OVERRIDDEN, actor=support, note="because")
    for state in (ItemState.PASSED, ItemState.FAILED, ItemState.PENDING, "bogus"):
        with pytest.raises(ValidationError):
            settle_item(third, state, actor=support, note="a note")
    third.refresh_from_db()
    assert third.state == ItemState.PENDING
    assert ChecklistRun.objects.get(pk=run.pk).status == RunStatus.OPEN


@pytest.mark.django_db
def test_a_failed_automatic_item_is_overridden_only_with_a_reason(runbook, support):
    run = start_run(procedure(DAILY_HEALTH_CHECK), actor=support)
    item = run.items.get(step__probe="pocketbase_health")
    ChecklistItem.objects.filter(pk=item.pk).update(
        state=ItemState.FAILED, evidence={"error": "PocketBase: cannot connect"}
    )
    item.refresh_from_db()

    for state, note in (
        (ItemState.DONE, "looks fine to me"),
        (ItemState.SKIPPED, "not today"),
        (ItemState.OVERRIDDEN, ""),
        (ItemState.OVERRIDDEN, "   "),
    ):
        with pytest.raises(ValidationError, match="override it only with a reason"):
            settle_item(item, state, actor=support, note=note)
        item.refresh_from_db()
        assert item.state == ItemState.FAILED

    settle_item(
        item, ItemState.OVERRIDDEN, actor=support, note="PocketBase was restarting; curl OK now"
    )

    item.refresh_from_db()
    assert item.state == ItemState.OVERRIDDEN
    assert item.note == "PocketBase was restarting; curl OK now"
    assert item.settled_by == support and item.settled_by_repr == "support"
    assert item.evidence == {"error": "PocketBase: cannot connect"}  # the evidence stays


@pytest.mark.django_db
def test_the_run_completes_when_all_items_are_settled_and_records_who_and_when(runbook, support):
    run = start_run(procedure("api-key-exposure"), actor=support, note="key leaked in a ticket")
    items = list(run.items.order_by("step__position"))
    assert run.started_by == support and run.started_by_repr == "support"

    for item in items[:-1]:
        settle_item(item, ItemState.DONE, actor=support, note=f"step {item.step.position} done")
        assert ChecklistRun.objects.get(pk=run.pk).status == RunStatus.OPEN
    settle_item(items[-1], ItemState.SKIPPED, actor=support, note="no incident tracker yet")

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.completed_at is not None and run.completed_at >= run.started_at
    assert run.progress == (len(items), len(items))
    for item in run.items.all():
        assert item.settled_by == support and item.settled_at is not None
    completed = AuditEvent.objects.filter(target_id=str(run.pk), message="Checklist completed")
    assert [(e.actor, e.actor_repr) for e in completed] == [(support, "support")]
    assert AuditEvent.objects.filter(
        target_id=str(run.pk), message__startswith="Document in the incident tracking system"
    ).exists()

    # A completed run is a record: nothing changes any more.
    with pytest.raises(ValidationError, match="completed"):
        settle_item(items[0], ItemState.SKIPPED, actor=support, note="changed my mind")


# --- validation runs opened by deploys and deletes -------------------------------------------


@pytest.fixture
def served_domain(tmp_path, settings):
    """The stack's domain served over HTTPS by a local TLS server, with a CA cfadmin trusts."""
    pki = make_pki(tmp_path / "pki", DOMAIN)
    server = TLSServer(pki["cert"], pki["key"]).start()
    settings.PROBE_RESOLVE = {DOMAIN: server.address}
    settings.PROBE_CA_FILE = pki["ca"]
    settings.PROBE_EXTERNAL = False
    settings.HEALTHCHECK_TIMEOUT = 3.0
    yield server
    server.stop()


def deployed(make_stack, remote, actor):
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        domains={"webui": DOMAIN},
        secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY},
    )
    operation = run(request_operation(stack, OperationKind.DEPLOY, actor=actor), remote)
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    return stack, operation


def run(operation, remote):
    assert run_operation(operation.pk, remote=remote, sleep=brief_sleep)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    return operation


def validation_run(stack, slug: str) -> ChecklistRun:
    return ChecklistRun.objects.get(stack=stack, procedure__slug=slug)


def wait_for_status(remote, uuid: str, wanted: str, timeout: float = 5.0) -> None:
    """Coolify stores container statuses only at its periodic checks: poll until it says so."""
    deadline = time.monotonic() + timeout
    while (status := remote.coolify.get_service(uuid)["status"]) != wanted:
        assert time.monotonic() < deadline, f"Coolify still says {status!r}, not {wanted!r}"
        time.sleep(0.01)


@pytest.mark.django_db(transaction=True)
def test_a_deploy_opens_a_post_deploy_run_whose_automatic_items_pass_with_evidence(
    runbook, make_stack, remote, served_domain, operator
):
    stack, operation = deployed(make_stack, remote, operator)

    run_ = validation_run(stack, POST_DEPLOY)
    items = items_by_probe(run_)

    assert {probe: item.state for probe, item in items.items()} == {
        "service_present": ItemState.PASSED,
        "domain_resolves": ItemState.PASSED,
        "https_serves": ItemState.PASSED,
        "record_running": ItemState.PASSED,
        "logs_show_startup": ItemState.PASSED,
    }, {probe: item.evidence for probe, item in items.items()}
    assert run_.status == RunStatus.COMPLETED and run_.completed_at is not None
    assert run_.started_by is None and run_.started_by_repr == "system"
    assert run_.note == f"Opened by {operation}"
    assert run_.operation_id == operation.pk
    assert run_.tenant == stack.tenant
    for probe, item in items.items():
        assert item.evidence["probe"] == probe
        assert item.evidence["checked_at"]
        assert item.settled_by_repr == "cfadmin probe" and item.settled_at is not None

    service = items["service_present"].evidence
    assert service["service_uuid"] == stack.coolify_service_uuid
    assert service["status"] == "running:healthy"
    assert service["meaning"] == "running and healthy" and service["read_at"]
    assert items["domain_resolves"].evidence[DOMAIN] == served_domain.address
    https = items["https_serves"].evidence[DOMAIN]
    assert https["days_left"] >= 88 and " 200" in https["http_status"]
    record = items["record_running"].evidence
    assert record["id"] == stack.pocketbase_id
    assert (record["tenant"], record["stack_name"], record["status"]) == (
        "customer-123",
        "customer-123-main",
        "running",
    )
    assert record["service_uuid"] == stack.coolify_service_uuid
    # Logs are read by compose service key, from the container `<key>-<service uuid>`.
    logs = items["logs_show_startup"].evidence[COMPOSE_KEY]
    assert f"{COMPOSE_KEY}: Listening on 0.0.0.0" in logs
    assert DOMAIN in served_domain.hosts
    assert ANTHROPIC_KEY not in str([item.evidence for item in items.values()])


@pytest.mark.django_db(transaction=True)
def test_a_missing_pocketbase_record_fails_its_item_with_evidence_then_is_overridden(
    runbook, make_stack, remote, served_domain, operator, support
):
    stack, _ = deployed(make_stack, remote, operator)
    assert remote.pocketbase.delete_record(stack.pocketbase_id)

    run_ = start_run(procedure(POST_DEPLOY), actor=support, stack=stack)
    assert run_probes(run_) == 5

    items = items_by_probe(run_)
    record = items["record_running"]
    assert record.state == ItemState.FAILED
    assert record.evidence["error"] == f"no agent_stacks record for {STACK}"
    assert record.evidence["probe"] == "record_running"
    assert record.settled_by_repr == "cfadmin probe"
    others = {p: i.state for p, i in items.items() if p != "record_running"}
    assert set(others.values()) == {ItemState.PASSED}
    run_.refresh_from_db()
    assert run_.status == RunStatus.OPEN

    with pytest.raises(ValidationError):
        settle_item(record, ItemState.DONE, actor=support, note="")
    with pytest.raises(ValidationError):
        settle_item(record, ItemState.OVERRIDDEN, actor=support, note="")
    settle_item(
        record,
        ItemState.OVERRIDDEN,
        actor=support,
        note="record recreated by hand with pb-stacks, see ticket 42",
    )

    run_.refresh_from_db()
    assert run_.status == RunStatus.COMPLETED
    record.refresh_from_db()
    assert record.state == ItemState.OVERRIDDEN and record.settled_by == support
    assert record.evidence["error"] == f"no agent_stacks record for {STACK}"


@pytest.mark.django_db(transaction=True)
def test_a_failed_item_passes_when_the_probes_run_again_after_the_fix(
    runbook, make_stack, remote, served_domain, operator, support
):
    stack, _ = deployed(make_stack, remote, operator)
    saved = remote.pocketbase.find_record("customer-123", "customer-123-main")
    remote.pocketbase.delete_record(saved["id"])
    run_ = start_run(procedure(POST_DEPLOY), actor=support, stack=stack)
    run_probes(run_)
    assert items_by_probe(run_)["record_running"].state == ItemState.FAILED

    remote.pocketbase.upsert_record(
        {k: saved[k] for k in ("tenant", "stack_name", "template", "status", "service_uuid")}
    )
    assert run_probes(run_) == 1  # only the item not yet settled

    assert items_by_probe(run_)["record_running"].state == ItemState.PASSED
    run_.refresh_from_db()
    assert run_.status == RunStatus.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_a_service_without_a_healthcheck_passes_as_the_deploy_did(
    runbook, make_stack, remote, served_domain, operator, support, coolify_sim
):
    """Coolify says `running:unknown` for a service whose containers have no healthcheck; the
    provisioner takes that as healthy, and so must the post-deploy probe (a deploy that
    succeeded must not fail its own validation)."""
    stack, _ = deployed(make_stack, remote, operator)
    uuid = stack.coolify_service_uuid
    # As if the image had no healthcheck: Docker reports no health for the container, and the
    # next container-status check stores `running:unknown`.
    with coolify_sim.api.lock:
        container = coolify_sim.api.lifecycle.containers[f"{COMPOSE_KEY}-{uuid}"]
        container["healthcheck"] = None
        container["health"] = None
    wait_for_status(remote, uuid, "running:unknown")

    run_ = start_run(procedure(POST_DEPLOY), actor=support, stack=stack)
    run_probes(run_)

    item = items_by_probe(run_)["service_present"]
    assert item.evidence["status"] == "running:unknown"
    assert item.state == ItemState.PASSED, item.evidence


@pytest.mark.django_db(transaction=True)
def test_a_delete_opens_a_post_delete_run_whose_items_pass(
    runbook, make_stack, remote, served_domain, operator, coolify_sim
):
    stack, _ = deployed(make_stack, remote, operator)
    served_domain.stop()  # Coolify's proxy stops serving the domain with the service

    run(request_operation(stack, OperationKind.DELETE, actor=operator), remote)

    run_ = validation_run(stack, POST_DELETE)
    items = items_by_probe(run_)
    assert {probe: item.state for probe, item in items.items()} == {
        "service_gone": ItemState.PASSED,
        "domain_not_served": ItemState.PASSED,
        "record_gone": ItemState.PASSED,
        "Docker volumes cleaned up": ItemState.PENDING,  # a person looks on the server
    }, {probe: item.evidence for probe, item in items.items()}
    assert items["service_gone"].evidence["service_uuid"] == stack.coolify_service_uuid
    assert "404" in items["service_gone"].evidence["answer"]
    assert "error" in items["domain_not_served"].evidence[DOMAIN]
    assert "no agent_stacks record" in items["record_gone"].evidence["note"]
    assert coolify_sim.api.snapshot()["services"] == []
    run_.refresh_from_db()
    assert run_.status == RunStatus.OPEN

    settle_item(
        items["Docker volumes cleaned up"],
        ItemState.DONE,
        actor=operator,
        note="docker volume ls shows nothing for customer-123",
    )
    run_.refresh_from_db()
    assert run_.status == RunStatus.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_a_domain_still_served_after_a_delete_fails_its_item(
    runbook, make_stack, remote, served_domain, operator
):
    stack, _ = deployed(make_stack, remote, operator)

    run(request_operation(stack, OperationKind.DELETE, actor=operator), remote)

    item = items_by_probe(validation_run(stack, POST_DELETE))["domain_not_served"]
    assert item.state == ItemState.FAILED
    assert item.evidence[DOMAIN]["days_left"] >= 88  # the evidence: it still answers HTTPS


@pytest.mark.django_db(transaction=True)
def test_without_probe_resolve_and_external_probes_off_dns_and_https_stay_to_do(
    runbook, make_stack, remote, operator, settings, monkeypatch
):
    settings.PROBE_RESOLVE = {}
    settings.PROBE_EXTERNAL = False
    looked_up: list[str] = []
    connected: list[str] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host, *args, **kwargs):
        looked_up.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        connected.append(address[0])
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)

    stack, _ = deployed(make_stack, remote, operator)

    run_ = validation_run(stack, POST_DEPLOY)
    items = items_by_probe(run_)
    for probe in ("domain_resolves", "https_serves"):
        item = items[probe]
        assert item.state == ItemState.PENDING, item.evidence
        assert "external probes are off" in item.evidence["note"]
        assert DOMAIN in item.evidence["note"]
        assert item.settled_at is None and item.settled_by_repr == ""
    for probe in ("service_present", "record_running", "logs_show_startup"):
        assert items[probe].state == ItemState.PASSED
    assert ChecklistRun.objects.get(pk=run_.pk).status == RunStatus.OPEN
    assert DOMAIN not in looked_up
    assert set(connected) <= {"127.0.0.1"}, connected
    assert set(looked_up) <= {"127.0.0.1", "localhost"}, looked_up


# --- the admin -------------------------------------------------------------------------------


def start_url(slug: str) -> str:
    return reverse("admin:ops_procedure_start", args=[procedure(slug).pk])


def settle_url(item: ChecklistItem) -> str:
    return reverse("admin:ops_checklistitem_settle", args=[item.run_id, item.pk])


def run_url(run_: ChecklistRun) -> str:
    return reverse("admin:ops_checklistrun_change", args=[run_.pk])


@pytest.fixture
def queued(monkeypatch):
    """What the admin hands to the worker (no worker runs here)."""
    calls: list[tuple] = []
    monkeypatch.setattr("cfadmin.jobs.enqueue", lambda func, *args: calls.append((func, *args)))
    return calls


@pytest.mark.django_db
def test_a_viewer_can_look_but_cannot_start_or_tick(runbook, client, viewer, support, queued):
    run_ = start_run(procedure(DAILY_HEALTH_CHECK), actor=support)
    item = run_.items.order_by("step__position").first()
    client.force_login(viewer)

    assert client.post(start_url(DAILY_HEALTH_CHECK)).status_code == 403
    assert client.post(settle_url(item), {"state": "done", "note": "x"}).status_code == 403
    probe_url = reverse("admin:ops_checklistrun_probe", args=[run_.pk])
    assert client.post(probe_url).status_code == 403
    assert client.post(reverse("admin:ops_run_healthchecks")).status_code == 403

    page = client.get(run_url(run_))
    assert page.status_code == 200
    assert b'name="state"' not in page.content
    dashboard = client.get(reverse("admin:ops_dashboard"))
    assert dashboard.status_code == 200
    assert b"Start a run" not in dashboard.content
    assert ChecklistRun.objects.count() == 1
    item.refresh_from_db()
    assert item.state == ItemState.PENDING
    assert queued == []


@pytest.mark.django_db
def test_support_starts_a_run_and_ticks_items(runbook, client, support, queued):
    client.force_login(support)
    assert b"Start a run" in client.get(reverse("admin:ops_dashboard")).content

    response = client.post(start_url(DAILY_HEALTH_CHECK))

    run_ = ChecklistRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run_url(run_)
    assert run_.started_by == support and run_.procedure.slug == DAILY_HEALTH_CHECK
    assert run_.items.count() == 4
    assert queued == [("ops.tasks.run_checklist_probes_task", run_.pk)]

    first, second, *_ = run_.items.order_by("step__position")
    response = client.post(settle_url(first), {"state": "done", "note": "curl -f says OK"})
    assert response.status_code == 302
    assert response["Location"] == run_url(run_) + f"#item-{first.pk}"
    first.refresh_from_db()
    assert (first.state, first.note, first.settled_by) == (
        ItemState.DONE,
        "curl -f says OK",
        support,
    )

    response = client.post(settle_url(second), {"state": "skipped", "note": ""}, follow=True)
    second.refresh_from_db()
    assert second.state == ItemState.PENDING
    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["“PocketBase OK” was not changed: Say why you skip this step."]

    page = client.get(run_url(run_)).content.decode()
    assert "curl -f says OK" in page and "1 of 4 steps settled" in page


@pytest.mark.django_db
def test_the_run_page_shows_the_runbook_commands_for_the_stack(
    runbook, client, support, make_stack, queued
):
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        status=StackStatus.RUNNING,
        coolify_service_uuid="svc0uuid0customer0123000",
        domains={"webui": DOMAIN},
    )
    client.force_login(support)

    response = client.post(start_url(POST_DEPLOY), {"stack": STACK}, follow=True)

    run_ = ChecklistRun.objects.get()
    assert run_.stack == stack and run_.tenant == stack.tenant
    page = unescape(response.content.decode())
    assert f"dig +short {DOMAIN}" in page
    assert f"curl -sI https://{DOMAIN}" in page
    # The container as Coolify names it: `<compose service key>-<service uuid>`.
    assert "docker logs cf-agent-customer-123-customer-123-main-svc0uuid0customer0123000" in page
    assert "/api/v1/services/svc0uuid0customer0123000" in page
    assert "stack_name='customer-123-main'" in page
    assert "{stack}" not in page and "{domain}" not in page and "{service_uuid}" not in page
    assert "{container}" not in page and "<service uuid>" not in page
    assert "checked by cfadmin: Domain serves HTTPS" in page


@pytest.mark.django_db
def test_starting_a_run_for_an_unknown_stack_is_refused(runbook, client, support, queued):
    client.force_login(support)

    response = client.post(start_url(POST_DEPLOY), {"stack": "nobody/nothing"}, follow=True)

    assert not ChecklistRun.objects.exists()
    assert [str(m) for m in response.context["messages"]] == [
        "No live stack 'nobody/nothing' (type tenant/stack)."
    ]


@pytest.mark.django_db
def test_an_emergency_run_shows_the_escalation_contacts_and_filled_commands(
    runbook, client, support, make_stack, queued
):
    make_stack(
        "customer-123",
        "customer-123-main",
        status=StackStatus.RUNNING,
        coolify_service_uuid="svc0uuid0customer0123000",
    )
    client.force_login(support)

    response = client.post(
        start_url("suspected-container-compromise"), {"stack": STACK}, follow=True
    )

    page = unescape(response.content.decode())
    # The stack's own network (named after its service uuid) and its container, as Coolify
    # names them.
    container = "cf-agent-customer-123-customer-123-main-svc0uuid0customer0123000"
    assert f"docker network disconnect svc0uuid0customer0123000 {container}" in page
    assert f"docker exec {container} ps aux" in page
    assert f"docker stop {container}" in page
    assert "{container}" not in page and "{service_uuid}" not in page
    assert "Security Incident → Security Team (15min)" in page
    assert "Platform Down → Platform Team (30min)" in page
    # Its isolate, capture and stop items are checked by cfadmin (issue 15): their checks queued.
    assert len(queued) == 1 and ChecklistRun.objects.get().pk in queued[0]


@pytest.mark.django_db
def test_a_failed_item_offers_only_an_override_with_a_required_reason(
    runbook, client, support, queued
):
    run_ = start_run(procedure(DAILY_HEALTH_CHECK), actor=support)
    item = run_.items.get(step__probe="coolify_api")
    ChecklistItem.objects.filter(pk=item.pk).update(
        state=ItemState.FAILED, evidence={"error": "Coolify: HTTP 401: Unauthenticated."}
    )
    client.force_login(support)

    page = client.get(run_url(run_)).content.decode()
    row = page[page.index(f'id="item-{item.pk}"') :]
    row = row[: row.index("</tr>")]
    assert 'value="overridden"' in row and "required" in row
    assert 'value="done"' not in row and 'value="skipped"' not in row
    assert "HTTP 401" in unescape(row)

    client.post(settle_url(item), {"state": "done", "note": "fine"})
    item.refresh_from_db()
    assert item.state == ItemState.FAILED
    client.post(settle_url(item), {"state": "overridden", "note": "token rotated, OK now"})
    item.refresh_from_db()
    assert item.state == ItemState.OVERRIDDEN


def test_checklists_module_exposes_the_hook_provisioning_calls(settings):
    assert "ops.checklists.open_validation_run" in settings.OPERATION_SUCCESS_HOOKS
    assert callable(checklists.open_validation_run)
