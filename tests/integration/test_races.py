"""Uniqueness races end as the same field error as the check a moment later, never a 500.

Two requests that both pass the Python check (no stack of that name yet, the domain free, no
tenant with that slug) race to insert; the database lets one win. On PostgreSQL the tests race
for real, in threads with their own connections, lined up by a barrier right after each one's
check (20 rounds each). SQLite serializes writers, so there (and on PostgreSQL too) the race is
replayed in one thread: the other request's row appears between the check and the insert.
"""

from __future__ import annotations

import html
import io
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.test import Client

from cfadmin.models import AuditEvent
from stacks.models import Operation, Stack, StackDomain
from stacks.plan import DeployRequest, validate_deploy_request
from stacks.services import DeployRefused, create_tenant, deploy_stack
from stacks.services import deploy as deploy_service
from tenants.models import Tenant

pytestmark = pytest.mark.integration

ROUNDS = 20
TENANT_ADD = "/admin/tenants/tenant/add/"
ENV = {"ANTHROPIC_API_KEY": "sk-test-races-0123456789abcdef"}
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serializes writers: two inserts never race (the replays below cover it)",
)


def request(
    stack_name: str,
    *,
    tenant: str = "customer-123",
    domain: str | None = None,
    create_tenant: bool = False,
) -> DeployRequest:
    return DeployRequest(
        tenant=tenant,
        project_name=f"{tenant}-project",
        template="openclaw-agent",
        stack_name=stack_name,
        domains=[("webui", domain or f"{stack_name}.example.com")],
        env=dict(ENV),
        create_tenant=create_tenant,
    )


def deploy(deploy_request: DeployRequest) -> Operation:
    """As the admin and the CLI call it: in a transaction of the caller's."""
    with transaction.atomic():
        return deploy_stack(deploy_request, actor="cli:race")


def refusal(call: Callable[[], Any]) -> DeployRefused:
    with pytest.raises(DeployRefused) as refused:
        call()
    return refused.value


def as_dicts(refused: DeployRefused) -> list[dict[str, str]]:
    return [error.as_dict() for error in refused.errors]


def sequential_errors(deploy_request: DeployRequest) -> list[dict[str, str]]:
    """What the check says now that the other request's rows are there."""
    errors, _ = validate_deploy_request(deploy_request)
    return [error.as_dict() for error in errors]


def field_errors(response: Any, field_id: str) -> list[str]:
    """The messages the admin renders next to the input `id_<field_id>`."""
    match = re.search(
        rf'<ul class="errorlist"[^>]*id="id_{re.escape(field_id)}_error"[^>]*>(.*?)</ul>',
        response.content.decode(),
        re.S,
    )
    return (
        [html.unescape(m) for m in re.findall(r"<li>(.*?)</li>", match.group(1))] if match else []
    )


def tenant_post(slug: str) -> dict[str, str]:
    return {
        "slug": slug,
        "name": f"Customer {slug}",
        "contact_email": "",
        "status": "active",
        "notes": "",
        "stacks-TOTAL_FORMS": "0",
        "stacks-INITIAL_FORMS": "0",
        "stacks-MIN_NUM_FORMS": "0",
        "stacks-MAX_NUM_FORMS": "0",
    }


def stack_post(tenant: Tenant, stack_name: str, domain: str) -> dict[str, str]:
    data = {
        "tenant": str(tenant.pk),
        "project_name": f"{tenant.slug}-project",
        "stack_name": stack_name,
        "template_name": "openclaw-agent",
        "domains-TOTAL_FORMS": "1",
        "domains-INITIAL_FORMS": "0",
        "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000",
        "domains-0-service": "webui",
        "domains-0-domain": domain,
        "secrets-TOTAL_FORMS": "0",
        "secrets-INITIAL_FORMS": "0",
        "secrets-MIN_NUM_FORMS": "0",
        "secrets-MAX_NUM_FORMS": "1000",
        "operations-TOTAL_FORMS": "0",
        "operations-INITIAL_FORMS": "0",
        "operations-MIN_NUM_FORMS": "0",
        "operations-MAX_NUM_FORMS": "0",
    }
    return data


def after_first_check(monkeypatch, owner: Any, name: str, then: Callable[[], None]) -> None:
    """Run `then` right after the first call of `owner.name` in each thread (the check)."""
    real = getattr(owner, name)
    seen = threading.local()

    def checked(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not getattr(seen, "done", False):
            seen.done = True
            then()
        return result

    monkeypatch.setattr(owner, name, checked)


def skip_first_check(monkeypatch, owner: Any, name: str) -> None:
    """The first call of `owner.name` sees nothing (the other row was not committed yet)."""
    real = getattr(owner, name)
    calls: list[int] = []

    def check(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(owner, name, check)


# --- replays: the other row appears between the check and the insert (SQLite and PostgreSQL) ---
# (deploy_stack is called without a transaction of the caller's: the other request's row must
# outlive this request's rollback, as a row another connection committed does.)


@pytest.mark.django_db
def test_a_stack_name_taken_after_the_check_is_refused_with_the_checks_error(
    monkeypatch, make_tenant
):
    make_tenant("customer-123")
    other = make_tenant("customer-9")
    mine = request("shared-name")
    after_first_check(
        monkeypatch,
        deploy_service,
        "validate_deploy_request",
        lambda: Stack.objects.create(
            tenant=other, project_name="p", stack_name="shared-name", template_name="base-llm"
        ),
    )

    refused = refusal(lambda: deploy_stack(mine, actor="cli:race"))

    assert as_dicts(refused) == sequential_errors(mine)
    assert [(e["field"], e["code"]) for e in as_dicts(refused)] == [
        ("stack_name", "stack_name_taken")
    ]
    assert "customer-9" in refused.errors[0].message  # names the owner, as the check does
    assert list(Stack.objects.values_list("tenant__slug", flat=True)) == ["customer-9"]
    assert not StackDomain.objects.exists() and not Operation.objects.exists()
    assert not AuditEvent.objects.filter(message="Created for a deploy").exists()


@pytest.mark.django_db
def test_the_cli_that_lost_a_stack_name_race_prints_the_field_error(monkeypatch, make_tenant):
    """`provision deploy`: the JSON error and exit 1 of a name already taken, no traceback."""
    other = make_tenant("customer-9")
    after_first_check(
        monkeypatch,
        deploy_service,
        "validate_deploy_request",
        lambda: Stack.objects.create(
            tenant=other, project_name="p", stack_name="cli-name", template_name="base-llm"
        ),
    )
    out = io.StringIO()

    with pytest.raises(CommandError):
        call_command(
            "provision",
            "deploy",
            "--tenant=customer-123",
            "--project-name=customer-123-project",
            "--template=openclaw-agent",
            "--stack-name=cli-name",
            "--domain=webui=cli.example.com",
            f"--env=ANTHROPIC_API_KEY={ENV['ANTHROPIC_API_KEY']}",
            "--no-wait",
            stdout=out,
        )

    error = json.loads(out.getvalue())["error"]
    assert (error["code"], error["field"]) == ("stack_name_taken", "stack_name")
    assert "customer-9" in error["message"]
    assert not Tenant.objects.filter(slug="customer-123").exists()  # nothing half-written


@pytest.mark.django_db
def test_a_domain_claimed_after_the_check_is_refused_with_the_checks_error(
    monkeypatch, make_stack, make_tenant
):
    other = make_stack("customer-9", "other-stack")
    make_tenant("customer-123")
    mine = request("my-stack", domain="demo.customer123.com")
    after_first_check(
        monkeypatch,
        deploy_service,
        "validate_deploy_request",
        lambda: StackDomain.objects.create(
            stack=other, service="webui", domain="demo.customer123.com"
        ),
    )

    refused = refusal(lambda: deploy_stack(mine, actor="cli:race"))

    assert as_dicts(refused) == sequential_errors(mine)
    assert [(e["field"], e["code"]) for e in as_dicts(refused)] == [
        ("domain.webui", "domain_taken")
    ]
    assert "customer-9/other-stack" in refused.errors[0].message
    assert not Stack.objects.filter(stack_name="my-stack").exists()
    assert list(StackDomain.objects.values_list("stack__stack_name", flat=True)) == ["other-stack"]


@pytest.mark.django_db
def test_when_the_check_run_again_sees_nothing_the_constraint_names_the_field(
    monkeypatch, make_tenant
):
    """Belt and braces: should the check miss the other row twice, the refusal still names
    the field, with the constraint's own message."""
    make_tenant("customer-123")
    other = make_tenant("customer-9")
    real = deploy_service.validate_deploy_request
    calls: list[int] = []

    def blind_check(deploy_request: DeployRequest) -> tuple[list, dict]:
        calls.append(1)
        errors, cleaned = real(deploy_request)
        if len(calls) == 1:
            Stack.objects.create(
                tenant=other, project_name="p", stack_name="blind-name", template_name="base-llm"
            )
        return errors if len(calls) == 1 else [], cleaned

    monkeypatch.setattr(deploy_service, "validate_deploy_request", blind_check)

    refused = refusal(lambda: deploy_stack(request("blind-name"), actor="cli:race"))

    assert len(calls) == 2
    assert as_dicts(refused) == [
        {
            "field": "stack_name",
            "message": "A live stack with this name already exists.",
            "code": "stack_name_taken",
        }
    ]


@pytest.mark.django_db
def test_a_tenant_created_after_the_check_is_used_like_a_moment_later(monkeypatch):
    """The runbook's CLI takes any tenant slug: the tenant another deploy just created is this
    deploy's tenant too, as it would be for a deploy a moment later."""
    mine = request("cli-stack", tenant="customer-55", create_tenant=True)
    after_first_check(
        monkeypatch,
        deploy_service,
        "validate_deploy_request",
        lambda: Tenant.objects.create(slug="customer-55", name="made by the other request"),
    )
    skip_first_check(monkeypatch, Tenant, "validate_unique")  # full_clean saw no tenant either

    operation = deploy_stack(mine, actor="cli:race")

    assert operation.stack.tenant.name == "made by the other request"
    assert Tenant.objects.filter(slug="customer-55").count() == 1


@pytest.mark.django_db
def test_create_tenant_that_lost_the_race_raises_the_checks_field_error(monkeypatch, make_tenant):
    make_tenant("customer-123")
    with pytest.raises(ValidationError) as sequential:
        create_tenant("customer-123", actor="cli:race")
    skip_first_check(monkeypatch, Tenant, "validate_unique")

    with transaction.atomic():
        with pytest.raises(ValidationError) as raced:
            create_tenant("customer-123", actor="cli:race")
        assert Tenant.objects.count() == 1  # the transaction goes on: only the savepoint failed

    assert raced.value.message_dict == sequential.value.message_dict
    assert raced.value.error_dict["slug"][0].code == "unique"


@pytest.mark.django_db
def test_the_admin_tenant_form_that_lost_the_race_shows_the_slug_error(
    monkeypatch, client, superuser, make_tenant
):
    make_tenant("customer-123", name="First")
    skip_first_check(monkeypatch, Tenant, "validate_unique")
    client.force_login(superuser)

    response = client.post(TENANT_ADD, tenant_post("customer-123"))

    assert response.status_code == 200
    assert field_errors(response, "slug") == ["A tenant with this slug already exists."]
    assert list(Tenant.objects.values_list("name", flat=True)) == ["First"]


@pytest.mark.django_db
def test_the_admin_stack_form_that_lost_a_domain_race_shows_the_domain_error(
    monkeypatch, client, superuser, make_stack, make_tenant
):
    make_stack("customer-9", "other-stack", domains={"webui": "demo.customer123.com"})
    mine = make_stack("customer-123", "my-stack")  # stacks are made by a deploy; edited here
    skip_first_check(monkeypatch, StackDomain, "clean")
    client.force_login(superuser)

    response = client.post(
        f"/admin/stacks/stack/{mine.pk}/change/",
        stack_post(mine.tenant, "my-stack", "demo.customer123.com"),
    )

    assert response.status_code == 200
    assert field_errors(response, "domains-0-domain") == [
        "demo.customer123.com is already used by stack customer-9/other-stack; a domain "
        "belongs to one live stack."
    ]
    assert not mine.domains.exists()


# --- real races on PostgreSQL ----------------------------------------------------------------


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at once, each in a thread with its own database connection; each one's
    result, or the exception it raised."""
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            results[index] = call()
        except Exception as exc:  # the test looks at what each request answered
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def line_up_after_check(monkeypatch, owner: Any, name: str, parties: int = 2) -> None:
    """Each thread waits, right after its check, until every other one has checked too."""
    barrier = threading.Barrier(parties)
    after_first_check(monkeypatch, owner, name, lambda: barrier.wait(timeout=20))


def winner_and_refusal(results: list[Any]) -> tuple[Operation, DeployRefused]:
    operations = [r for r in results if isinstance(r, Operation)]
    refusals = [r for r in results if isinstance(r, DeployRefused)]
    assert len(operations) == 1 and len(refusals) == 1, results
    return operations[0], refusals[0]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_deploys_of_the_same_new_stack_name_at_once(monkeypatch, make_tenant):
    make_tenant("customer-123")
    for round_ in range(ROUNDS):
        with monkeypatch.context() as patch:
            line_up_after_check(patch, deploy_service, "validate_deploy_request")
            name = f"race-{round_}"
            requests = [request(name), request(name, domain=f"other-{name}.example.com")]
            results = race(*(lambda r=r: deploy(r) for r in requests))

        winner, refused = winner_and_refusal(results)
        assert [(e["field"], e["code"]) for e in as_dicts(refused)] == [
            ("stack_name", "stack_name_taken")
        ], round_
        assert as_dicts(refused) == sequential_errors(requests[results.index(refused)])
        assert Stack.objects.filter(stack_name=name).count() == 1
        assert winner.stack.stack_name == name


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_stacks_claiming_the_same_domain_at_once(monkeypatch, make_tenant):
    make_tenant("customer-123")
    for round_ in range(ROUNDS):
        with monkeypatch.context() as patch:
            line_up_after_check(patch, deploy_service, "validate_deploy_request")
            domain = f"shared-{round_}.example.com"
            first = request(f"left-{round_}", domain=domain)
            second = request(f"right-{round_}", domain=domain)
            results = race(lambda r=first: deploy(r), lambda r=second: deploy(r))

        winner, refused = winner_and_refusal(results)
        assert [(e["field"], e["code"]) for e in as_dicts(refused)] == [
            ("domain.webui", "domain_taken")
        ], round_
        assert str(winner.stack) in refused.errors[0].message
        assert StackDomain.objects.filter(domain=domain).count() == 1
        assert Stack.objects.filter(stack_name__endswith=f"-{round_}").count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_cli_deploys_for_the_same_new_tenant_at_once_share_it(monkeypatch):
    for round_ in range(ROUNDS):
        slug = f"new-tenant-{round_}"
        with monkeypatch.context() as patch:
            line_up_after_check(patch, deploy_service, "validate_deploy_request")
            first = request(f"{slug}-a", tenant=slug, create_tenant=True)
            second = request(f"{slug}-b", tenant=slug, create_tenant=True)
            results = race(lambda r=first: deploy(r), lambda r=second: deploy(r))

        assert all(isinstance(r, Operation) for r in results), (round_, results)
        assert Tenant.objects.filter(slug=slug).count() == 1
        assert Stack.objects.filter(tenant__slug=slug).count() == 2


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_admins_adding_the_same_tenant_slug_at_once(monkeypatch, superuser):
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(superuser)
    for round_ in range(ROUNDS):
        slug = f"admin-race-{round_}"
        with monkeypatch.context() as patch:
            line_up_after_check(patch, Tenant, "validate_unique")
            data = tenant_post(slug)
            results = race(*(lambda c=c, d=data: c.post(TENANT_ADD, d) for c in clients))

        statuses = sorted(response.status_code for response in results)
        assert statuses == [200, 302], (round_, results)
        loser = next(response for response in results if response.status_code == 200)
        assert field_errors(loser, "slug") == ["A tenant with this slug already exists."]
        assert Tenant.objects.filter(slug=slug).count() == 1
