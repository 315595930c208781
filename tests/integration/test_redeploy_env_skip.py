"""A background redeploy leaves out the envs call when the values are the ones last pushed to
the service (issue 17: a third of a fleet rollout's Coolify calls); the values survive the
service PATCH's re-parse, a changed value is pushed, and a person's Redeploy always pushes."""

import pytest

from stacks.choices import OperationKind, OperationStatus
from stacks.provisioning import run_operation
from stacks.services import request_operation
from stacks.services.secrets import store_secrets
from tests.conftest import brief_sleep

pytestmark = pytest.mark.integration

ENVS_ROUTE = "PATCH /api/v1/services/{uuid}/envs/bulk"
TOKEN = "123456789:env-skip-telegram-token"
KEY = "sk-env-skip-anthropic-0123456789"


def run(operation, remote):
    assert run_operation(operation.pk, remote=remote, sleep=brief_sleep)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    return operation


def envs_calls(coolify_sim) -> int:
    return coolify_sim.api.calls_by_route[ENVS_ROUTE]


def service_envs(coolify_sim, stack) -> dict[str, str]:
    [service] = [
        s for s in coolify_sim.api.snapshot()["services"] if s["uuid"] == stack.coolify_service_uuid
    ]
    return service["envs"]


@pytest.fixture
def deployed(make_stack, remote, operator):
    stack = make_stack(
        "env-skip",
        "env-skip-bot",
        template_name="telegram-bot",
        secrets={"TELEGRAM_BOT_TOKEN": TOKEN, "ANTHROPIC_API_KEY": KEY},
    )
    run(request_operation(stack, OperationKind.DEPLOY, actor=operator), remote)
    stack.refresh_from_db()
    return stack


def redeploy(stack, remote, operator, *, background: bool):
    operation = request_operation(
        stack, OperationKind.REDEPLOY, actor=operator, background=background
    )
    return run(operation, remote)


@pytest.mark.django_db(transaction=True)
def test_a_background_redeploy_with_unchanged_values_skips_the_envs_call(
    deployed, remote, coolify_sim, operator
):
    assert deployed.pushed_env_digest  # the deploy pushed them and said so
    assert TOKEN not in deployed.pushed_env_digest and KEY not in deployed.pushed_env_digest
    before = envs_calls(coolify_sim)

    operation = redeploy(deployed, remote, operator, background=True)

    assert envs_calls(coolify_sim) == before
    step = operation.steps.get(name="set_env")
    assert "unchanged" in step.detail
    # The service PATCH re-parsed the compose; the saved values are still there.
    envs = service_envs(coolify_sim, deployed)
    assert envs["TELEGRAM_BOT_TOKEN"] == TOKEN and envs["ANTHROPIC_API_KEY"] == KEY


@pytest.mark.django_db(transaction=True)
def test_a_changed_value_is_pushed_by_a_background_redeploy(
    deployed, remote, coolify_sim, operator
):
    store_secrets(deployed, {"ANTHROPIC_API_KEY": "sk-env-skip-new-value-9876543210"})
    before = envs_calls(coolify_sim)

    redeploy(deployed, remote, operator, background=True)

    assert envs_calls(coolify_sim) == before + 1
    envs = service_envs(coolify_sim, deployed)
    assert envs["ANTHROPIC_API_KEY"] == "sk-env-skip-new-value-9876543210"


@pytest.mark.django_db(transaction=True)
def test_a_persons_redeploy_always_pushes_the_values(deployed, remote, coolify_sim, operator):
    before = envs_calls(coolify_sim)

    redeploy(deployed, remote, operator, background=False)

    assert envs_calls(coolify_sim) == before + 1


@pytest.mark.django_db(transaction=True)
def test_a_new_service_is_given_the_values_again(deployed, remote, coolify_sim, operator):
    """The digest is of the values on one service: another uuid does not match."""
    digest = deployed.pushed_env_digest
    deployed.coolify_service_uuid = "another-service-uuid"

    assert deployed.env_digest({"TELEGRAM_BOT_TOKEN": TOKEN, "ANTHROPIC_API_KEY": KEY}) != digest
