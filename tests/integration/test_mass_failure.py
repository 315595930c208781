"""Mass-failure triage end to end (issue 15) against the Coolify simulator and a real PocketBase:
three deployed stacks die in Coolify; the active_stacks health check sees it, cfadmin opens one
Mass container failure incident with the pattern (server read from Coolify's server resources);
the operator stops them base-llm first and restarts them in waves of two."""

import time

import pytest

from ops import health
from ops.models import Incident
from ops.models.mass_failure import MassFailure, RestartWave, WaveStatus
from ops.response import mass_failure_waves
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.clients.coolify_status import interpret
from stacks.models import Operation
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import no_sleep

pytestmark = pytest.mark.integration

SECRETS = {"ANTHROPIC_API_KEY": "sk-ant-test-0123456789", "TELEGRAM_BOT_TOKEN": "123:tg-test"}


def run(operation, remote):
    assert run_operation(operation.pk, remote=remote, sleep=no_sleep)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    return operation


def wait_until_down(coolify, uuids):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        statuses = {s["uuid"]: interpret(s.get("status")) for s in coolify.list_services()}
        if not any(statuses[uuid].up for uuid in uuids):
            return
        time.sleep(0.05)
    raise AssertionError("the services did not stop in the simulator")


@pytest.mark.django_db(transaction=True)
def test_a_mass_failure_is_detected_stopped_in_order_and_restarted_in_waves(
    make_stack, remote, operator, settings, monkeypatch
):
    settings.MASS_FAILURE_STACKS = 3
    settings.HEALTHCHECK_TIMEOUT = 5.0
    monkeypatch.setattr("cfadmin.jobs.enqueue", lambda *args, **kwargs: None)
    monkeypatch.setattr("stacks.services.operations.enqueue", lambda *args, **kwargs: None)
    stacks = [
        make_stack("acme", "acme-bot", template_name="telegram-bot", secrets=SECRETS),
        make_stack("acme", "acme-llm", template_name="base-llm"),
        make_stack("globex", "globex-agent", template_name="openclaw-agent", secrets=SECRETS),
    ]
    for stack in stacks:
        run(request_operation(stack, OperationKind.DEPLOY, actor=operator), remote)
        stack.refresh_from_db()
    uuids = [stack.coolify_service_uuid for stack in stacks]

    # The containers die behind cfadmin's back (cfadmin still expects them running).
    for uuid in uuids:
        remote.coolify.stop_service(uuid)
    wait_until_down(remote.coolify, uuids)
    health.run_and_record(["active_stacks"])
    health.run_and_record(["active_stacks"])  # a second run joins, never doubles

    incident = Incident.objects.get(title__startswith="Mass container failure")
    mass = MassFailure.objects.get(incident=incident)
    assert set(mass.stacks.all()) == set(stacks)
    servers = mass.pattern["groups"]["server"]
    assert servers == [{"value": "localhost", "stacks": sorted(map(str, stacks)), "count": 3}]
    assert [g["value"] for g in mass.pattern["groups"]["template"]] == [
        "base-llm",
        "openclaw-agent",
        "telegram-bot",
    ]

    queued, _ = mass_failure_waves.stop_in_order(incident, actor=operator)
    assert [op.stack.stack_name for op in queued] == ["acme-llm", "globex-agent", "acme-bot"]
    for operation in queued:
        run(operation, remote)
    assert set(mass.stacks.values_list("status", flat=True)) == {StackStatus.STOPPED}

    mass_failure_waves.plan_restart(incident, actor=operator, wave_size=2)
    for _ in range(2):  # each wave: the job starts it, the worker runs it, the job checks it
        mass_failure_waves.advance(mass.pk)
        wave = RestartWave.objects.get(mass_failure=mass, status=WaveStatus.RUNNING)
        for operation in wave.operations.all():
            run(operation, remote)
    mass_failure_waves.advance(mass.pk)

    assert list(RestartWave.objects.values_list("status", flat=True)) == [WaveStatus.SUCCEEDED] * 2
    assert set(mass.stacks.values_list("status", flat=True)) == {StackStatus.RUNNING}
    first_wave = RestartWave.objects.get(number=1).stacks.values_list("stack_name", flat=True)
    assert set(first_wave) == {"acme-bot", "globex-agent"}  # lightest first
    statuses = {s["uuid"]: interpret(s.get("status")) for s in remote.coolify.list_services()}
    assert all(statuses[uuid].up for uuid in uuids)
    assert Operation.objects.filter(kind=OperationKind.START).count() == 3
