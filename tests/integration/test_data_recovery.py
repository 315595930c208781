"""Data recovery end to end on the simulator: a delete that keeps the volumes, a redeploy onto
them, and a normal delete that still destroys them."""

import pytest

from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Stack
from stacks.models.kept_volumes import KeptVolumes
from stacks.provisioning import run_operation
from stacks.services import request_operation
from stacks.services.recovery import redeploy_onto_kept, volumes_exist
from tests.conftest import brief_sleep

pytestmark = pytest.mark.integration

ANTHROPIC_KEY = "sk-test-anthropic-0123456789abcdefghij"
TELEGRAM_TOKEN = "123456789:test-telegram-token-value"


def run(operation, remote):
    assert run_operation(operation.pk, remote=remote, sleep=brief_sleep)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    return operation


def deployed(make_stack, remote, operator):
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        template_name="openclaw-agent",
        domains={"webui": "demo.customer123.com"},
        secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN},
    )
    run(request_operation(stack, OperationKind.DEPLOY, actor=operator), remote)
    stack.refresh_from_db()
    return stack


@pytest.mark.django_db(transaction=True)
def test_kept_volumes_survive_the_delete_and_a_redeploy_mounts_them(
    make_stack, remote, coolify_sim, operator
):
    stack = deployed(make_stack, remote, operator)
    volumes = stack.server_names().volumes
    assert set(volumes) <= set(coolify_sim.api.snapshot()["volumes"])

    run(
        request_operation(
            stack, OperationKind.DELETE, actor=operator, parameters={"keep_volumes": True}
        ),
        remote,
    )

    stack.refresh_from_db()
    assert stack.status == StackStatus.DELETED
    state = coolify_sim.api.snapshot()
    assert state["services"] == []
    assert set(volumes) <= set(state["volumes"])  # delete_volumes=false left them
    assert state["deleted_services"][-1]["delete_volumes"] is False
    kept = KeptVolumes.objects.get(stack=stack)
    assert kept.volumes == volumes and kept.service_uuid == stack.coolify_service_uuid
    exists, details = volumes_exist(stack)
    assert exists is None and details["volumes"] == volumes

    operation = run(redeploy_onto_kept(kept, actor=operator), remote)

    new = Stack.objects.get(pk=operation.stack_id)
    assert new.pk != stack.pk and new.stack_name == stack.stack_name
    assert new.status == StackStatus.RUNNING
    assert new.coolify_service_uuid != stack.coolify_service_uuid
    assert list(new.domains.values_list("domain", flat=True)) == ["demo.customer123.com"]
    assert new.secrets.get(key="ANTHROPIC_API_KEY").reveal() == ANTHROPIC_KEY
    kept.refresh_from_db()
    assert kept.reused_by_id == new.pk
    state = coolify_sim.api.snapshot()
    [service] = state["services"]
    assert service["envs"]["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    mounted = {v for mounts in state["mounts"].values() for v in mounts}
    assert set(volumes) <= mounted  # the new containers mount the OLD volumes
    assert not set(new.server_names().volumes) & set(state["volumes"])  # no new empty ones
    exists, details = volumes_exist(new, remote.coolify)
    assert exists is True, details
    assert set(details["volumes"]) == set(volumes)


@pytest.mark.django_db(transaction=True)
def test_a_normal_delete_still_destroys_the_volumes(make_stack, remote, coolify_sim, operator):
    stack = deployed(make_stack, remote, operator)

    run(request_operation(stack, OperationKind.DELETE, actor=operator), remote)

    state = coolify_sim.api.snapshot()
    assert state["volumes"] == []
    assert state["deleted_services"][-1]["delete_volumes"] is True
    assert not KeptVolumes.objects.filter(stack=stack).exists()


@pytest.mark.django_db(transaction=True)
def test_a_recovered_stack_deleted_again_passes_the_same_volumes_on(
    make_stack, remote, coolify_sim, operator
):
    stack = deployed(make_stack, remote, operator)
    volumes = stack.server_names().volumes
    keep = {"keep_volumes": True}
    run(request_operation(stack, OperationKind.DELETE, actor=operator, parameters=keep), remote)
    second = Stack.objects.get(
        pk=run(
            redeploy_onto_kept(KeptVolumes.objects.get(stack=stack), actor=operator), remote
        ).stack_id
    )

    run(request_operation(second, OperationKind.DELETE, actor=operator, parameters=keep), remote)
    kept_again = KeptVolumes.objects.get(stack=second)
    assert kept_again.volumes == volumes  # the first generation's, not empty new ones
    third = Stack.objects.get(
        pk=run(redeploy_onto_kept(kept_again, actor=operator), remote).stack_id
    )

    mounted = {v for mounts in coolify_sim.api.snapshot()["mounts"].values() for v in mounts}
    assert set(volumes) <= mounted
    assert volumes_exist(third, remote.coolify)[0] is True
