"""cfadmin against a Coolify that behaves like Coolify 4.3.11's code, not only its spec.

The simulator queues lifecycle jobs, lags statuses behind them, says `exited` between two
`starting` reads, renames containers and volumes, trims strings and clears domains the way the
server does (stacks/coolify_simulator/). Each test is one promise of issue 10's "Done means".
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from stacks import reconcile
from stacks.choices import DriftKind, OperationKind, OperationStatus, Repair, StackStatus
from stacks.clients.coolify import CoolifyClient
from stacks.coolify_simulator.api import Timings
from stacks.coolify_simulator.server import build as build_simulator
from stacks.models import Operation, Stack
from stacks.provisioning import Remote, run_operation
from stacks.services import request_operation
from tests.conftest import SIM_TIMINGS, SIM_TOKEN, no_sleep

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ANTHROPIC_KEY = "sk-test-behaviour-0123456789abcdef"
TELEGRAM_TOKEN = "123456789:test-behaviour-telegram-token"
SECRETS = {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN}


def run(stack: Stack, kind: str, remote, actor, **options: Any) -> Operation:
    operation = request_operation(stack, kind, actor=actor)
    options = {"sleep": no_sleep, "poll_interval": 0.02, "health_timeout": 5.0, **options}
    run_operation(operation.pk, remote=remote, **options)
    operation.refresh_from_db()
    return operation


def deployed(make_stack, remote, actor, tenant: str = "customer-123", **fields: Any) -> Stack:
    fields.setdefault("secrets", SECRETS)
    stack = make_stack(tenant, **fields)
    operation = run(stack, OperationKind.DEPLOY, remote, actor)
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    stack.refresh_from_db()
    return stack


def service_of(coolify_sim, stack: Stack) -> dict[str, Any]:
    return next(
        s for s in coolify_sim.api.snapshot()["services"] if s["uuid"] == stack.coolify_service_uuid
    )


def test_a_new_tenants_first_deploy_succeeds(make_stack, remote, operator, coolify_sim):
    """POST /projects checks the description against DESCRIPTION_PATTERN (no ':')."""
    stack = deployed(make_stack, remote, operator, tenant="brand-new-tenant")

    [project] = coolify_sim.api.snapshot()["projects"]
    assert project["name"] == "brand-new-tenant-project"
    assert project["description"] == "cfadmin tenant brand-new-tenant"
    assert stack.status == StackStatus.RUNNING


def test_a_restart_coolify_has_not_run_is_not_reported_done(
    make_stack, remote, operator, coolify_sim
):
    stack = deployed(make_stack, remote, operator)
    coolify_sim.api.timings.queue_seconds = 60.0  # Coolify's queue is stuck: the job never runs

    operation = run(stack, OperationKind.RESTART, remote, operator, health_timeout=0.6)

    assert operation.status == OperationStatus.FAILED
    assert "never showed the service going down" in operation.error
    assert "no sign that the restart it queued has run" in operation.error
    stack.refresh_from_db()
    assert stack.status == StackStatus.ERROR


def test_a_restart_coolify_ran_is_reported_done_after_it_went_down(
    make_stack, remote, operator, coolify_sim
):
    stack = deployed(make_stack, remote, operator)
    coolify_sim.api.timings.queue_seconds = 0.2
    started = timezone.now()

    operation = run(stack, OperationKind.RESTART, remote, operator)

    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    wait = operation.steps.get(name="wait_healthy")
    assert wait.detail.startswith("status running")
    # Done only once the job ran: not before the queue lag had passed.
    assert (operation.finished_at - started).total_seconds() >= 0.2


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_deploys_survive_noisy_status_sequences(make_stack, remote, operator, settings, seed):
    """A two-container stack through odd reads (`degraded`, `starting:unknown`, `exited` between
    two `starting`), chosen by a seed so a failure can be replayed: the tests' usual timings
    with other seeds than tests/conftest.py's."""
    server = build_simulator(
        token=SIM_TOKEN,
        timings=Timings(**SIM_TIMINGS),
        noise_seed=seed,
    ).start()
    settings.COOLIFY_URL = server.url
    noisy = Remote(
        coolify=CoolifyClient(server.url, SIM_TOKEN, timeout=2, sleep=no_sleep),
        pocketbase=remote.pocketbase,
    )
    try:
        stack = deployed(
            make_stack,
            noisy,
            operator,
            template_name="base-llm",
            secrets={"OPENAI_API_KEY": "sk-test-noise"},
        )
        for kind in (OperationKind.RESTART, OperationKind.STOP, OperationKind.START):
            operation = run(stack, kind, noisy, operator)
            assert operation.status == OperationStatus.SUCCEEDED, (kind, operation.error)
            stack.refresh_from_db()
    finally:
        noisy.coolify.close()
        server.stop()


def test_an_import_keeps_every_secret_exactly_as_it_was_set(
    make_stack, remote, operator, coolify_sim
):
    """Coolify's real_value quotes literal values; cfadmin reads `value`. Values keep `$`,
    quotes, backslashes, braces, inner spaces and non-ASCII characters."""
    odd = {
        "ANTHROPIC_API_KEY": "sk-a$b'c\"d\\e {{environment.X}} f  g ünï",
        "TELEGRAM_BOT_TOKEN": "123:${NOT_A_VAR}$$",
    }
    stack = deployed(make_stack, remote, operator, secrets=odd, domains={"webui": "a.example.com"})
    service_uuid = stack.coolify_service_uuid
    Operation.objects.filter(stack=stack).delete()
    Stack.objects.filter(pk=stack.pk).delete()  # as if cfadmin lost it

    run_ = reconcile.run_reconcile(
        actor="test", coolify=remote.coolify, pocketbase=remote.pocketbase
    )
    [drift] = [d for d in run_.drift if d["target"] == f"service:{service_uuid}"]
    reconcile.repair(
        drift["repairs"][0],
        drift["target"],
        actor="test",
        coolify=remote.coolify,
        pocketbase=remote.pocketbase,
    )

    imported = Stack.objects.get(coolify_service_uuid=service_uuid)
    assert {s.key: s.reveal() for s in imported.secrets.all()} == odd
    assert list(imported.domains.values_list("service", "domain")) == [("webui", "a.example.com")]


def test_a_domain_removed_on_redeploy_is_gone(make_stack, remote, operator, coolify_sim):
    stack = deployed(make_stack, remote, operator, domains={"webui": "gone.example.com"})
    [app] = service_of(coolify_sim, stack)["applications"]
    assert "gone.example.com" in (app["fqdn"] or "")

    stack.domains.update(released_at=timezone.now())
    operation = run(stack, OperationKind.REDEPLOY, remote, operator)

    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    [app] = service_of(coolify_sim, stack)["applications"]
    assert not app["fqdn"]


def test_a_stack_without_a_domain_gets_no_public_url(make_stack, remote, operator, coolify_sim):
    """No SERVICE_URL_* key in a template: Coolify would generate an sslip.io URL for it."""
    stack = deployed(
        make_stack,
        remote,
        operator,
        template_name="base-llm",
        secrets={"OPENAI_API_KEY": "sk-test-nodomain"},
    )
    assert all(not app["fqdn"] for app in service_of(coolify_sim, stack)["applications"])


def test_names_on_the_delete_page_are_the_servers(
    make_stack, remote, operator, admin_role, client, coolify_sim
):
    stack = deployed(
        make_stack,
        remote,
        operator,
        template_name="base-llm",
        secrets={"OPENAI_API_KEY": "sk-test-names"},
    )
    client.force_login(admin_role)
    response = client.post(
        reverse("admin:stacks_stack_changelist"),
        {"action": "delete_stacks", "_selected_action": [stack.pk], "index": "0"},
    )
    page = response.content.decode()
    shown = set(re.findall(r"<code>([^<]+)</code>", page))

    snapshot = coolify_sim.api.snapshot()
    ours = stack.coolify_service_uuid
    containers = {c for c in snapshot["containers"] if c.endswith(f"-{ours}")}
    volumes = {v for v in snapshot["volumes"] if v.startswith(f"{ours}_")}
    assert len(containers) == 2 and len(volumes) == 2
    assert containers <= shown
    assert volumes <= shown


def test_a_restart_made_in_coolify_is_not_reported_as_a_stopped_stack(
    make_stack, remote, operator, coolify_sim
):
    """After a restart Coolify reads `exited` until its next container check, though the new
    containers run: reconcile asks Docker (through the logs endpoint) before calling it drift,
    and a repair that would take `stopped` into cfadmin refuses."""
    stack = deployed(make_stack, remote, operator)
    Stack.objects.filter(pk=stack.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    coolify_sim.api.timings.refresh_seconds = 60.0  # the next container check is far away
    remote.coolify.restart_service(stack.coolify_service_uuid)  # someone, in Coolify's UI

    wait_for(lambda: service_of(coolify_sim, stack)["status"] == "exited")
    wait_for(lambda: any(c.endswith(stack.coolify_service_uuid) for c in running(coolify_sim)))

    report = reconcile.run_reconcile(
        actor="test", coolify=remote.coolify, pocketbase=remote.pocketbase
    )
    assert report.error == "" and report.drift == []
    with pytest.raises(reconcile.RepairRefused, match="container runs"):
        reconcile.repair(
            Repair.TAKE_COOLIFY_STATUS,
            f"stack:{stack.pk}",
            actor="test",
            coolify=remote.coolify,
            pocketbase=remote.pocketbase,
        )
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING


def test_a_stack_really_stopped_in_coolify_is_still_drift(
    make_stack, remote, operator, coolify_sim
):
    stack = deployed(make_stack, remote, operator)
    Stack.objects.filter(pk=stack.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    remote.coolify.stop_service(stack.coolify_service_uuid)
    wait_for(lambda: service_of(coolify_sim, stack)["status"] == "exited")

    report = reconcile.run_reconcile(
        actor="test", coolify=remote.coolify, pocketbase=remote.pocketbase
    )
    assert [d["kind"] for d in report.drift] == [DriftKind.SERVICE_STATUS]


def running(coolify_sim) -> list[str]:
    return [
        c["name"] for c in coolify_sim.api.lifecycle.containers.values() if c["state"] == "running"
    ]


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the simulator did not get there in time"
        time.sleep(0.02)
