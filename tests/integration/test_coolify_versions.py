"""Features are gated on Coolify's version (GET /api/v1/version), as API-NOTES §8 says."""

import pytest

from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.clients.coolify import SERVICE_URLS, format_version, parse_version
from stacks.coolify_simulator import api as simulator_api
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import no_sleep

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("4.3.11", (4, 3, 11, 10**6)),
        ("4.0.0-beta.474", (4, 0, 0, 474)),
        ("v4.0.0", (4, 0, 0, 10**6)),
        ("not a version", (0,)),
    ],
)
def test_versions_parse_and_order(text, parsed):
    assert parse_version(text) == parsed


def test_a_beta_sorts_before_its_release_and_after_older_betas():
    assert parse_version("4.0.0-beta.461") < parse_version("4.0.0-beta.474")
    assert parse_version("4.0.0-beta.474") < parse_version("4.0.0") < parse_version("4.3.11")
    assert format_version(SERVICE_URLS) == "4.0.0-beta.461"


@pytest.mark.django_db(transaction=True)
def test_a_coolify_too_old_for_service_domains_is_refused_before_anything_is_created(
    make_stack, remote, coolify_sim, operator, monkeypatch
):
    monkeypatch.setattr(simulator_api, "VERSION", "4.0.0-beta.400")
    stack = make_stack(
        domains={"webui": "demo.customer123.com"},
        secrets={"ANTHROPIC_API_KEY": "sk-test-version-gate-0123456789"},
    )

    operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
    run_operation(operation.pk, remote=remote, sleep=no_sleep)
    operation.refresh_from_db()
    stack.refresh_from_db()

    assert operation.status == OperationStatus.FAILED
    assert "4.0.0-beta.400 is too old for service domains" in operation.error
    assert "4.0.0-beta.461 or newer" in operation.error
    assert stack.status == StackStatus.ERROR
    assert coolify_sim.api.snapshot()["services"] == []
