"""Server resources against the Coolify simulator: a deployed stack's containers and volumes
measured through SERVER_COMMAND = `manage.py coolify_server_shell` (the simulator's stand-in
shell, as in `make run`), mapped to the stack and its tenant, stored, and given back as the
triage's evidence."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from ops.checks import resources
from ops.health import record, run_checks
from ops.models import CheckStatus, HealthCheckResult
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import SIM_TOKEN, no_sleep

pytestmark = pytest.mark.integration

BASE_DIR = Path(__file__).resolve().parents[2]
GIB = 1024**3


@pytest.fixture
def server_shell(remote, coolify_sim, settings):
    """SERVER_COMMAND answering from the simulator's live state, as `make run` sets it."""
    settings.SERVER_COMMAND = (
        f"env DJANGO_SETTINGS_MODULE=tests.settings {shlex.quote(sys.executable)} "
        f"{shlex.quote(str(BASE_DIR / 'manage.py'))} coolify_server_shell "
        f"--url {coolify_sim.url} --token {SIM_TOKEN} --host {{host}} {{command}}"
    )
    settings.HEALTHCHECK_TIMEOUT = 20.0  # three Django start-ups on a shared machine
    settings.HEALTHCHECK_DISK_WARN_PERCENT = 80
    settings.HEALTHCHECK_DISK_DOWN_PERCENT = 90
    settings.OPERATION_SUCCESS_HOOKS = []
    return remote


@pytest.mark.django_db(transaction=True)  # the checks' threads read the stacks
def test_a_deployed_stack_is_measured_per_container_and_tenant_and_stored(
    server_shell, make_stack, operator
):
    stack = make_stack(
        "acme", "bot1", secrets={"ANTHROPIC_API_KEY": "sk-test-resources-0123456789abcdef"}
    )
    operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
    assert run_operation(operation.pk, remote=server_shell, sleep=no_sleep)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    [container] = stack.server_names().containers
    [volume] = stack.server_names().volumes

    outcomes = {o.name: o for o in run_checks(resources.CHECK_NAMES)}

    assert {name: o.status for name, o in outcomes.items()} == dict.fromkeys(
        resources.CHECK_NAMES, CheckStatus.OK
    ), {name: o.message for name, o in outcomes.items()}
    [server] = outcomes["server_resources"].details["servers"]
    assert server["server"] == "localhost" and server["error"] == ""
    assert 0 < server["memory"]["used_percent"] < 85
    assert [disk["mount"] for disk in server["disks"]] == ["/"]

    containers = outcomes["container_resources"].details
    [row] = [r for r in containers["containers"] if r["name"] == container]
    assert (row["tenant"], row["stack"], row["service"]) == ("acme", "bot1", "webui")
    assert row["memory_limit"] == 2 * GIB  # openclaw-agent's limits.memory
    assert 0 < row["memory_of_limit_percent"] < 90
    assert "coolify-proxy" in [r["name"] for r in containers["others"]]

    volumes = outcomes["volume_sizes"].details
    assert [t["tenant"] for t in volumes["tenants"]] == ["acme"]
    assert volumes["stacks"][0]["stack"] == "bot1" and volumes["unmatched"] == []
    assert volumes["totals"]["volumes"] == 1 and volume

    record(list(outcomes.values()))
    assert HealthCheckResult.objects.filter(check_name__in=resources.CHECK_NAMES).count() == 3
    evidence = resources.snapshot()
    assert evidence["container_resources"]["details"]["containers"][0]["tenant"] == "acme"
    assert evidence["volume_sizes"]["status"] == CheckStatus.OK


@pytest.mark.django_db
def test_a_server_command_that_fails_is_down_with_its_error(remote, settings):
    settings.SERVER_COMMAND = "sh -c 'echo ssh: connect to host {host} refused >&2; exit 255'"
    settings.HEALTHCHECK_TIMEOUT = 5.0

    [outcome] = run_checks(["server_resources"])

    assert outcome.status == CheckStatus.DOWN
    assert outcome.message == (
        "Could not measure memory and disk: localhost "
        "(exit 255: ssh: connect to host 127.0.0.1 refused)"
    )
