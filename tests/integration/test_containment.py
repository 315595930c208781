"""Containment end to end (issue 15): isolate then release against the Coolify simulator and a
real PocketBase restores exactly the stored domains, and the stack runs again."""

import pytest

from stacks.choices import Containment, OperationKind, OperationStatus, StackStatus
from stacks.models import StackDomain
from stacks.provisioning import run_operation
from stacks.services import OperationRefused, request_operation
from tests.conftest import no_sleep

pytestmark = pytest.mark.integration


def run(operation, remote):
    assert run_operation(operation.pk, remote=remote, sleep=no_sleep)
    operation.refresh_from_db()
    return operation


def fqdns(coolify_sim, uuid):
    [service] = [s for s in coolify_sim.api.snapshot()["services"] if s["uuid"] == uuid]
    return {app["name"]: app["fqdn"] for app in service["applications"]}


@pytest.mark.django_db(transaction=True)
def test_isolate_then_release_restores_exactly_the_stored_domains(
    make_stack, remote, coolify_sim, operator
):
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        template_name="base-llm",
        domains={"webui": "chat.customer123.com"},
        secrets={"OPENAI_API_KEY": "sk-test-openai-0123456789abcdefghij"},
    )
    deploy = run(request_operation(stack, OperationKind.DEPLOY, actor=operator), remote)
    assert deploy.status == OperationStatus.SUCCEEDED, deploy.error
    stack.refresh_from_db()
    before = fqdns(coolify_sim, stack.coolify_service_uuid)
    assert any(before.values()), before

    isolate = run(
        request_operation(stack, OperationKind.ISOLATE, actor=operator),
        remote,
    )

    assert isolate.status == OperationStatus.SUCCEEDED, isolate.error
    stack.refresh_from_db()
    assert stack.status == StackStatus.STOPPED
    assert stack.containment == Containment.ISOLATED and stack.contained_at is not None
    assert not any(fqdns(coolify_sim, stack.coolify_service_uuid).values())
    assert "exited" in remote.coolify.get_service(stack.coolify_service_uuid)["status"]
    # cfadmin keeps the domains (released_at stays empty) and Coolify keeps the volumes.
    assert list(
        StackDomain.objects.filter(stack=stack, released_at__isnull=True).values_list(
            "domain", flat=True
        )
    ) == ["chat.customer123.com"]
    assert coolify_sim.api.snapshot()["volumes"]
    with pytest.raises(OperationRefused) as refused:
        request_operation(stack, OperationKind.START, actor=operator)
    assert refused.value.code == "contained"

    release = run(request_operation(stack, OperationKind.RELEASE, actor=operator), remote)

    assert release.status == OperationStatus.SUCCEEDED, release.error
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    assert stack.containment == Containment.NONE and stack.contained_at is None
    assert fqdns(coolify_sim, stack.coolify_service_uuid) == before
    assert "running" in remote.coolify.get_service(stack.coolify_service_uuid)["status"]
    record = remote.pocketbase.find_record("customer-123", "customer-123-main")
    assert record["status"] == "running"
