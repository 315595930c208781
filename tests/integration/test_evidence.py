"""Evidence captured from the Coolify simulator (Coolify 4.3.11's API): what a root token and a
read-only token see, logs scrubbed of the stack's secrets, and what a stopped stack gives."""

import hashlib
import time

import pytest

from ops.models.evidence import EvidenceItem, EvidenceKind
from ops.response.evidence_capture import capture_job
from stacks.choices import OperationKind, OperationStatus
from stacks.clients.coolify import CoolifyClient
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import no_sleep
from tests.unit.incident_helpers import make_incident

pytestmark = pytest.mark.integration

CANARY = "sk-test-canary-evidence-0123456789"
READ_ONLY = "sim-read-only-token"


def deployed(make_stack, remote, operator):
    stack = make_stack(
        "customer-123",
        "customer-123-main",
        template_name="openclaw-agent",
        domains={"webui": "demo.customer123.com"},
        secrets={"ANTHROPIC_API_KEY": CANARY, "TELEGRAM_BOT_TOKEN": "123:tg-test-value"},
    )
    run(request_operation(stack, OperationKind.DEPLOY, actor=operator), remote)
    stack.refresh_from_db()
    return stack


def run(operation, remote):
    assert run_operation(operation.pk, remote=remote, sleep=no_sleep)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error


def captured(incident, stack, coolify):
    capture_job(incident.pk, [stack.pk], None, "system", coolify=coolify)
    items = list(EvidenceItem.objects.filter(incident=incident).order_by("id"))
    for item in items:
        assert item.sha256 == hashlib.sha256(item.content.encode("utf-8")).hexdigest()
        assert CANARY not in item.content
    return items


@pytest.mark.django_db(transaction=True)
def test_a_capture_reads_service_env_keys_and_logs_without_secrets(
    make_stack, remote, coolify_sim, operator, support
):
    stack = deployed(make_stack, remote, operator)
    incident = make_incident(support)
    incident.stacks.add(stack)
    for container in coolify_sim.api.lifecycle.containers.values():  # the app logs its key
        container["logs"].append((time.time(), f"loaded ANTHROPIC_API_KEY={CANARY}"))

    items = captured(incident, stack, remote.coolify)

    by_kind = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    assert not [item.title for item in items if item.failed]
    [service] = by_kind[EvidenceKind.SERVICE]
    assert stack.coolify_service_uuid in service.content
    assert "# compose (docker_compose_raw)" in service.content  # a root token reads it
    [keys] = by_kind[EvidenceKind.ENV_KEYS]
    assert {"ANTHROPIC_API_KEY", "TELEGRAM_BOT_TOKEN"} <= set(keys.content.split())
    assert by_kind[EvidenceKind.LOGS]
    assert any("[secret ANTHROPIC_API_KEY]" in log.content for log in by_kind[EvidenceKind.LOGS])
    [operations] = by_kind[EvidenceKind.OPERATIONS]
    assert "\tdeploy\tsucceeded\toperator\t" in operations.content

    # A token without read:sensitive: no compose (ServicesController::removeSensitiveData).
    coolify_sim.api.add_token(READ_ONLY, {"read"})
    reader = CoolifyClient(coolify_sim.url, READ_ONLY, timeout=2, sleep=no_sleep)
    before = set(EvidenceItem.objects.values_list("pk", flat=True))
    captured(incident, stack, reader)
    reader.close()
    again = EvidenceItem.objects.exclude(pk__in=before)
    service = again.get(kind=EvidenceKind.SERVICE)
    assert "compose: not readable (the token lacks read:sensitive)" in service.content
    assert "ANTHROPIC_API_KEY" in again.get(kind=EvidenceKind.ENV_KEYS).content


@pytest.mark.django_db(transaction=True)
def test_a_stopped_stack_gives_no_logs_and_says_why(
    make_stack, remote, coolify_sim, operator, support
):
    stack = deployed(make_stack, remote, operator)
    run(request_operation(stack, OperationKind.STOP, actor=operator), remote)
    incident = make_incident(support)
    incident.stacks.add(stack)

    items = captured(incident, stack, remote.coolify)

    logs = [item for item in items if item.kind == EvidenceKind.LOGS]
    assert logs and all(item.failed for item in logs)
    # Stopping removes the containers (docker_cleanup): Coolify answers 404 "Container not
    # found." (400 "Container is not running." while one still exists, stopped).
    assert all(
        "Container not found." in item.content or "Container is not running." in item.content
        for item in logs
    ), [item.content for item in logs]
    assert not [i for i in items if i.failed and i.kind != EvidenceKind.LOGS]
