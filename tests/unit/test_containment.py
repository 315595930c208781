"""Containment (issue 15) on in-memory fakes: the isolate and release steps, the operations an
isolated stack refuses, reconcile leaving it alone, the incident's bulk requests, permissions
and the pages that show it."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from cfadmin.models import AuditEvent
from cfadmin.permissions import may
from ops.incident_actions import find_action
from ops.models import IncidentEventKind
from ops.response import containment
from stacks.choices import (
    Containment,
    DriftKind,
    OperationKind,
    OperationStatus,
    Repair,
    StackStatus,
)
from stacks.models import Operation, Stack
from stacks.permissions import CONTAIN
from stacks.provisioning import OperationRunner, Remote
from stacks.provisioning.containment_steps import network_disconnect_commands
from stacks.reconcile import RepairRefused, find_drift, repair
from stacks.services import OperationRefused, request_operation, request_operations
from tests.fakes import FakeCoolify, FakePocketBase
from tests.unit.incident_helpers import events, login, make_incident, page, work_url

DOMAIN = "agent.example.com"
SECRETS = {"ANTHROPIC_API_KEY": "sk-unit-test-not-a-real-key"}


class DomainsCoolify(FakeCoolify):
    """The fake Coolify, with each service's applications and their fqdn (set by `urls`)."""

    def get_service(self, uuid: str) -> dict[str, Any]:
        self._call("get_service", uuid)
        service = self._service(uuid)
        apps = [{"name": u["name"], "fqdn": u["url"] or None} for u in service.get("urls", [])]
        return {"uuid": uuid, "status": service["status"], "applications": apps}

    def set_service_urls(self, uuid: str, urls: list[dict[str, str]]) -> None:
        self._call("set_service_urls", uuid)
        by_name = {u["name"]: u for u in self._service(uuid).get("urls", [])}
        by_name.update({u["name"]: dict(u) for u in urls})
        self._service(uuid)["urls"] = list(by_name.values())


@pytest.fixture
def coolify() -> DomainsCoolify:
    return DomainsCoolify()


@pytest.fixture
def remote(coolify) -> Remote:
    return Remote(coolify=coolify, pocketbase=FakePocketBase())


def run(stack: Stack, remote: Remote, kind: str) -> Operation:
    operation = Operation.objects.create(stack=stack, kind=kind, requested_by_repr="test")
    assert Operation.objects.claim(operation.pk)
    operation.refresh_from_db()
    OperationRunner(
        operation,
        remote,
        poll_interval=0,
        health_timeout=5,
        delete_timeout=5,
        sleep=lambda _s: remote.coolify.tick(),
    ).run()
    operation.refresh_from_db()
    stack.refresh_from_db()
    return operation


@pytest.fixture
def deployed(make_stack, remote) -> Stack:
    stack = make_stack(domains={"webui": DOMAIN}, secrets=SECRETS)
    assert run(stack, remote, OperationKind.DEPLOY).status == OperationStatus.SUCCEEDED
    return stack


def fqdns(coolify: DomainsCoolify, stack: Stack) -> list[str | None]:
    return [a["fqdn"] for a in coolify.get_service(stack.coolify_service_uuid)["applications"]]


def isolated(stack: Stack, status: str = StackStatus.STOPPED) -> Stack:
    Stack.objects.filter(pk=stack.pk).update(containment=Containment.ISOLATED, status=status)
    stack.refresh_from_db()
    return stack


# --- the steps ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_isolate_takes_domains_off_stops_and_keeps_the_stored_domains(deployed, remote, coolify):
    assert fqdns(coolify, deployed) == [f"https://{DOMAIN}:18789"]

    operation = run(deployed, remote, OperationKind.ISOLATE)

    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert [s.name for s in operation.steps.order_by("position")] == [
        "mark_isolated",
        "remove_domains",
        "stop",
        "wait_stopped",
        "sync_pocketbase",
    ]
    assert deployed.status == StackStatus.STOPPED and deployed.is_isolated
    assert deployed.contained_at is not None
    assert fqdns(coolify, deployed) == [None]
    assert coolify.count("update_service") == 0  # the compose is not pushed again
    assert list(deployed.domains.filter(released_at__isnull=True).values_list("domain", flat=True))
    # Running it again finds everything done: resumable.
    again = run(deployed, remote, OperationKind.ISOLATE)
    assert again.status == OperationStatus.SUCCEEDED, again.error
    outcomes = {s.name: s.outcome for s in again.steps.all()}
    assert outcomes["mark_isolated"] == "already_done"
    assert outcomes["remove_domains"] == "already_done"
    assert coolify.count("set_service_urls") == 1


@pytest.mark.django_db
def test_release_restores_exactly_the_stored_domains_and_starts(deployed, remote, coolify):
    before = fqdns(coolify, deployed)
    run(deployed, remote, OperationKind.ISOLATE)

    operation = run(deployed, remote, OperationKind.RELEASE)

    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert fqdns(coolify, deployed) == before
    assert deployed.status == StackStatus.RUNNING
    assert deployed.containment == Containment.NONE and deployed.contained_at is None
    assert operation.steps.order_by("position").last().name == "clear_containment"


@pytest.mark.django_db
def test_the_worker_refuses_to_start_an_isolated_stack(deployed, remote, coolify):
    """Defence in depth: a start that reached the worker anyway fails at its step."""
    run(deployed, remote, OperationKind.ISOLATE)
    starts = coolify.count("start_service")

    operation = run(deployed, remote, OperationKind.START)

    assert operation.status == OperationStatus.FAILED
    assert "isolated" in operation.error
    assert coolify.count("start_service") == starts


# --- what an isolated stack accepts ---------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (StackStatus.STOPPED, OperationKind.START),
        (StackStatus.RUNNING, OperationKind.RESTART),
        (StackStatus.STOPPED, OperationKind.REDEPLOY),
        (StackStatus.STOPPED, OperationKind.ROTATE_SECRETS),
        (StackStatus.ERROR, OperationKind.DEPLOY),
    ],
)
def test_an_isolated_stack_refuses_what_would_start_it(make_stack, operator, status, kind):
    stack = isolated(make_stack(), status)
    with pytest.raises(OperationRefused) as refused:
        request_operation(stack, kind, actor=operator)
    assert refused.value.code == "contained"
    assert "isolated" in refused.value.message and "released" in refused.value.message
    assert not stack.accepts(kind)
    assert not Operation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (StackStatus.RUNNING, OperationKind.STOP),
        (StackStatus.STOPPED, OperationKind.DELETE),
        (StackStatus.STOPPED, OperationKind.RELEASE),
    ],
)
def test_an_isolated_stack_may_be_stopped_deleted_and_released(make_stack, operator, status, kind):
    stack = isolated(make_stack(), status)
    assert request_operation(stack, kind, actor=operator).kind == kind


@pytest.mark.django_db
def test_release_is_refused_for_a_stack_that_is_not_isolated(make_stack, operator):
    stack = make_stack(status=StackStatus.STOPPED)
    with pytest.raises(OperationRefused, match="not isolated"):
        request_operation(stack, OperationKind.RELEASE, actor=operator)


# --- reconcile ------------------------------------------------------------------------------


def service(uuid: str, status: str) -> dict[str, Any]:
    return {"uuid": uuid, "name": uuid, "status": status, "description": ""}


@pytest.mark.django_db
def test_reconcile_finds_no_drift_in_an_isolated_stopped_stack(make_stack):
    stack = isolated(make_stack(coolify_service_uuid="svc-1", coolify_project_uuid="p-1"))
    Stack.objects.filter(pk=stack.pk).update(status=StackStatus.RUNNING)  # cfadmin's view
    plain = make_stack("other", coolify_service_uuid="svc-2", coolify_project_uuid="p-2")
    Stack.objects.filter(pk=plain.pk).update(status=StackStatus.RUNNING)
    Stack.objects.update(updated_at="2020-01-01T00:00:00Z")

    drift, _ = find_drift([service("svc-1", "exited"), service("svc-2", "exited")], [])

    status_drift = [d for d in drift if d.kind == DriftKind.SERVICE_STATUS]
    assert [d.stack_id for d in status_drift] == [plain.pk]  # the plain one only


@pytest.mark.django_db
def test_reconcile_reports_an_isolated_stack_running_again_without_a_repair(make_stack):
    stack = isolated(make_stack(coolify_service_uuid="svc-1", coolify_project_uuid="p-1"))
    Stack.objects.update(updated_at="2020-01-01T00:00:00Z")

    drift, _ = find_drift([service("svc-1", "running:healthy")], [])

    [found] = [d for d in drift if d.kind == DriftKind.SERVICE_STATUS]
    assert found.stack_id == stack.pk and found.repairs == []
    assert "isolated" in found.message


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [Repair.TAKE_COOLIFY_STATUS, Repair.MARK_ERROR])
def test_reconcile_repairs_skip_an_isolated_stack(make_stack, operator, kind):
    stack = isolated(make_stack(coolify_service_uuid="svc-1"))
    with pytest.raises(RepairRefused, match="isolated"):
        repair(kind, f"stack:{stack.pk}", actor=operator, coolify=object(), pocketbase=object())
    stack.refresh_from_db()
    assert stack.status == StackStatus.STOPPED


# --- from an incident -----------------------------------------------------------------------


@pytest.mark.django_db
def test_isolate_all_queues_one_operation_per_linked_stack_with_the_incident(make_stack, operator):
    first = make_stack("acme", status=StackStatus.RUNNING)
    second = make_stack("beta", status=StackStatus.RUNNING)
    make_stack("gamma", status=StackStatus.RUNNING)  # not linked
    incident = make_incident(operator)
    incident.stacks.set([first, second])

    outcome = find_action("contain_isolate").run(incident, {"stack": "all"}, actor=operator)

    operations = Operation.objects.order_by("stack_id")
    assert [(o.stack_id, o.kind) for o in operations] == [
        (first.pk, OperationKind.ISOLATE),
        (second.pk, OperationKind.ISOLATE),
    ]
    assert all(o.parameters == {"incident_id": incident.pk} for o in operations)
    assert "2 stacks" in outcome.message
    [line] = events(incident, IncidentEventKind.CONTAINMENT)
    assert "isolate requested" in line and str(first) in line and str(second) in line
    audited = AuditEvent.objects.filter(target_id=str(incident.pk), action="operation")
    assert audited.filter(message__contains="Containment").exists()


@pytest.mark.django_db
def test_one_stack_from_an_incident_and_a_refusal_changes_nothing(make_stack, operator):
    stack = make_stack(status=StackStatus.STOPPED)
    incident = make_incident(operator)
    incident.stacks.set([stack])
    stop = find_action("contain_stop")
    with pytest.raises(Exception, match="not possible"):
        stop.run(incident, {"stack": str(stack.pk)}, actor=operator)
    with pytest.raises(Exception, match="linked"):
        stop.run(incident, {"stack": "999"}, actor=operator)
    assert not Operation.objects.exists()


@pytest.mark.django_db
def test_support_may_not_contain_operator_may(make_stack, support, operator, client):
    stack = make_stack(status=StackStatus.RUNNING)
    incident = make_incident(operator)
    incident.stacks.set([stack])
    assert not may(support, CONTAIN) and may(operator, CONTAIN)
    assert CONTAIN in find_action("contain_isolate").permissions
    assert containment.forms(incident, support) == ()
    assert containment.forms(incident, operator) == (containment.CONTAIN_FORM,)

    login(client, support)
    response = client.post(work_url(incident, "contain_isolate"), {"stack": "all"})
    assert response.status_code == 403
    assert not Operation.objects.exists()

    login(client, operator)
    client.post(work_url(incident, "contain_isolate"), {"stack": "all"})
    assert Operation.objects.get().kind == OperationKind.ISOLATE


# --- pages ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_incident_panel_and_stack_page_show_isolation_and_commands(
    make_stack, operator, client
):
    stack = isolated(make_stack(coolify_service_uuid="svc-abc"))
    incident = make_incident(operator)
    incident.stacks.set([stack])
    commands = network_disconnect_commands(stack)
    assert commands[0] == "docker network disconnect svc-abc coolify-proxy"
    assert commands[1:] == [
        f"docker network disconnect svc-abc {name}" for name in stack.server_names().containers
    ]
    login(client, operator)

    incident_page = page(client.get(reverse("admin:ops_incident_change", args=[incident.pk])))
    assert "no network disconnect" in incident_page
    assert all(command in incident_page for command in commands)
    assert "Isolated" in incident_page

    stack_page = page(client.get(reverse("admin:stacks_stack_change", args=[stack.pk])))
    assert "cf-contained-isolated" in stack_page and commands[1] in stack_page
    assert 'value="release_stacks"' in stack_page and 'value="start_stacks"' not in stack_page

    changelist = reverse("admin:stacks_stack_changelist")
    other = make_stack("other")
    listed = page(client.get(changelist + "?containment=contained"))
    assert str(stack) in listed and str(other) not in listed
    assert "cf-contained-isolated" in listed


@pytest.mark.django_db
def test_bulk_from_the_stack_list_isolates_through_the_confirmation(make_stack, operator, client):
    stacks = [make_stack(name, status=StackStatus.RUNNING) for name in ("acme", "beta")]
    login(client, operator)
    data = {"action": "isolate_stacks", "_selected_action": [s.pk for s in stacks]}
    changelist = reverse("admin:stacks_stack_changelist")
    confirm = client.post(changelist, data)
    assert "Yes, isolate 2 stacks" in page(confirm)
    client.post(changelist, {**data, "post": "yes"})
    queued, skipped = request_operations(stacks, OperationKind.ISOLATE, actor=operator)
    assert Operation.objects.filter(kind=OperationKind.ISOLATE).count() == 2
    assert queued == [] and len(skipped) == 2  # one in flight per stack
