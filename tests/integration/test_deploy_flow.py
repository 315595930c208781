"""The runbook's deploy and delete, end to end: simulator + real PocketBase."""

import pytest

from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import brief_sleep

pytestmark = pytest.mark.integration

ANTHROPIC_KEY = "sk-test-anthropic-0123456789abcdefghij"
TELEGRAM_TOKEN = "123456789:test-telegram-token-value"


def runbook_stack(make_stack):
    return make_stack(
        "customer-123",
        "customer-123-main",
        template_name="openclaw-agent",
        domains={"webui": "demo.customer123.com"},
        secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN},
    )


def run(operation, remote):
    assert run_operation(operation.pk, remote=remote, sleep=brief_sleep)
    operation.refresh_from_db()
    return operation


@pytest.mark.django_db(transaction=True)
def test_the_runbook_example_deploys_and_deletes_leaving_nothing(
    make_stack, remote, coolify_sim, operator
):
    stack = runbook_stack(make_stack)

    deploy = run(request_operation(stack, OperationKind.DEPLOY, actor=operator), remote)

    assert deploy.status == OperationStatus.SUCCEEDED, deploy.error
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    assert set(deploy.result) == {
        "ok",
        "project_uuid",
        "service_uuid",
        "domains",
        "pocketbase_id",
        "duration_ms",
    }
    assert deploy.result["domains"] == ["demo.customer123.com"]
    state = coolify_sim.api.snapshot()
    [service] = state["services"]
    assert service["uuid"] == stack.coolify_service_uuid
    assert service["status"] == "running:healthy"
    assert service["envs"]["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert ANTHROPIC_KEY not in service["docker_compose_raw"]
    record = remote.pocketbase.find_record("customer-123", "customer-123-main")
    assert record["status"] == "running" and record["id"] == stack.pocketbase_id
    assert ANTHROPIC_KEY not in str(record)

    delete = run(request_operation(stack, OperationKind.DELETE, actor=operator), remote)

    assert delete.status == OperationStatus.SUCCEEDED, delete.error
    assert delete.result["deleted"]["coolify_service_uuid"] == stack.coolify_service_uuid
    stack.refresh_from_db()
    assert stack.status == StackStatus.DELETED
    state = coolify_sim.api.snapshot()
    assert state["services"] == [] and state["volumes"] == []
    assert remote.pocketbase.find_record("customer-123", "customer-123-main") is None
    assert Operation.objects.filter(stack=stack).count() == 2
