"""Reconcile's pure logic: Coolify services and PocketBase records as plain dicts, no network.

The integration suite (tests/integration/test_reconcile.py) drives the same code against the
simulator and a real PocketBase; here each rule of find_drift, run_reconcile and repair's
refusals is pinned with crafted inputs.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from cfadmin.models import AuditEvent
from stacks import reconcile
from stacks.choices import DriftKind, OperationKind, OperationStatus, Repair, StackStatus
from stacks.clients.errors import ClientError, NotFound
from stacks.models import Operation, ReconcileRun, Stack
from stacks.reconcile import Drift, RepairRefused, coolify_status, find_drift, service_identity

pytestmark = pytest.mark.django_db

TENANT = "customer-123"
STACK = "customer-123-main"
SERVICE_UUID = "svc-main-0001"
PROJECT_UUID = "proj-0001"
DOMAIN = "demo.customer123.com"


# --- builders and stubs --------------------------------------------------------------------------


def labelled_compose(tenant: str = TENANT, stack: str = STACK, *, as_list: bool = False) -> str:
    labels = {
        "cf.tenant": tenant,
        "cf.stack": stack,
        "cf.template": "openclaw-agent",
        "cf.template-version": "2.1.0",
    }
    if as_list:
        lines = "\n".join(f'      - "{k}={v}"' for k, v in labels.items())
    else:
        lines = "\n".join(f'      {k}: "{v}"' for k, v in labels.items())
    return f"services:\n  webui:\n    image: example/webui:1\n    labels:\n{lines}\n"


def service(
    uuid: str = SERVICE_UUID,
    status: str = "running:healthy",
    *,
    compose: str = "",
    description: str = "",
    name: str | None = None,
) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "name": name or uuid,
        "status": status,
        "docker_compose_raw": compose,
        "description": description,
    }


def cfadmin_service(
    uuid: str, tenant: str, stack: str, status: str = "running:healthy"
) -> dict[str, Any]:
    """A service carrying cfadmin's compose labels."""
    return service(uuid, status, compose=labelled_compose(tenant, stack), name=stack)


def record_of(stack: Stack, record_id: str = "rec-0001", **overrides: Any) -> dict[str, Any]:
    """The PocketBase record cfadmin would write for the stack, as PocketBase returns it."""
    stack.refresh_from_db()
    record = {
        "id": record_id,
        "tenant": stack.tenant.slug,
        "stack_name": stack.stack_name,
        "template": stack.template_name,
        "status": stack.status,
        "project_uuid": stack.coolify_project_uuid,
        "service_uuid": stack.coolify_service_uuid,
        "domains": list(stack.domains.values_list("domain", flat=True)),
        "django_id": stack.pk,
    }
    record.update(overrides)
    return record


def settle(stack: Stack, status: str = StackStatus.RUNNING, **fields: Any) -> Stack:
    """Put the stack in a status, changed long enough ago for Coolify's status to catch up."""
    fields.setdefault("updated_at", timezone.now() - timedelta(minutes=10))
    Stack.objects.filter(pk=stack.pk).update(status=status, **fields)
    stack.refresh_from_db()
    return stack


@pytest.fixture
def running(make_stack) -> Stack:
    """A deployed, running stack with one domain."""
    stack = make_stack(TENANT, STACK, domains={"webui": DOMAIN})
    return settle(stack, coolify_service_uuid=SERVICE_UUID, coolify_project_uuid=PROJECT_UUID)


class StubCoolify:
    def __init__(self, services: list[dict[str, Any]] = (), error: Exception | None = None):
        self.services = list(services)
        self.error = error

    def list_services(self) -> list[dict[str, Any]]:
        if self.error:
            raise self.error
        return self.services

    def get_service(self, uuid: str) -> dict[str, Any]:
        for s in self.services:
            if s["uuid"] == uuid:
                return s
        raise NotFound("no such service", service="Coolify", status=404)

    def service_exists(self, uuid: str) -> bool:
        return any(s["uuid"] == uuid for s in self.services)

    def service_logs(self, uuid: str, sub_service: str, *, lines: int = 100) -> str:
        """Like Coolify's logs endpoint: 400 unless the container runs (as its status says)."""
        service = self.get_service(uuid)
        if not str(service.get("status", "")).startswith("running"):
            raise ClientError("Container is not running.", service="Coolify", status=400)
        return f"{sub_service}: Listening on 0.0.0.0"


class StubPocketBase:
    def __init__(self, records: list[dict[str, Any]] = (), error: Exception | None = None):
        self.records = list(records)
        self.error = error
        self.upserts: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def list_records(self, *, tenant: str | None = None) -> list[dict[str, Any]]:
        if self.error:
            raise self.error
        return [r for r in self.records if tenant is None or r["tenant"] == tenant]

    def upsert_record(self, data: dict[str, Any]) -> dict[str, Any]:
        self.upserts.append(data)
        return {**data, "id": "rec-written"}

    def delete_record(self, record_id: str) -> None:
        self.deleted.append(record_id)


# --- coolify_status ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("running:healthy", StackStatus.RUNNING),
        ("running", StackStatus.RUNNING),
        ("running:unhealthy", StackStatus.ERROR),
        ("exited", StackStatus.STOPPED),
        ("exited:unhealthy", StackStatus.STOPPED),
        ("degraded:unhealthy", StackStatus.ERROR),
        ("unknown", StackStatus.ERROR),
        ("", StackStatus.ERROR),
        ("starting:unknown", None),
        ("starting:unhealthy", None),
        # A single container's word; a service aggregates it as degraded (ContainerStatusAggregator)
        ("restarting", StackStatus.ERROR),
        ("stopping", StackStatus.ERROR),  # not Coolify's vocabulary: unknown
    ],
)
def test_coolify_status_maps_states_to_cfadmin_statuses(status, expected):
    """Healthy running is running, exited is stopped, moving states are None, the rest error."""
    assert coolify_status({"status": status}) == expected


def test_coolify_status_of_a_service_without_status_is_error():
    """A service dict without a status key counts as error, not as running."""
    assert coolify_status({}) == StackStatus.ERROR


# --- service_identity ----------------------------------------------------------------------------


def test_identity_from_compose_labels_as_a_mapping():
    """All four cf.* labels are read from a mapping of labels."""
    assert service_identity(service(compose=labelled_compose())) == {
        "tenant": TENANT,
        "stack_name": STACK,
        "template": "openclaw-agent",
        "template_version": "2.1.0",
    }


def test_identity_from_compose_labels_as_a_list():
    """Labels written as a list of "k=v" strings are read as well."""
    identity = service_identity(service(compose=labelled_compose("acme", "acme-bot", as_list=True)))
    assert identity == {
        "tenant": "acme",
        "stack_name": "acme-bot",
        "template": "openclaw-agent",
        "template_version": "2.1.0",
    }


def test_identity_labels_may_sit_on_any_service():
    """The first service without cf.stack is passed over; a later one carries the labels."""
    compose = (
        "services:\n"
        "  db:\n    image: postgres:16\n    labels:\n      other: x\n"
        "  webui:\n    labels:\n      cf.tenant: acme\n      cf.stack: acme-main\n"
    )
    identity = service_identity(service(compose=compose))
    assert (identity["tenant"], identity["stack_name"], identity["template"]) == (
        "acme",
        "acme-main",
        "",
    )


def test_identity_from_the_description():
    """Without labels the description "cfadmin stack <tenant>/<stack> (…)" names the stack."""
    described = service(description="cfadmin stack acme/acme-main (openclaw-agent 2.1.0)")
    assert service_identity(described) == {
        "tenant": "acme",
        "stack_name": "acme-main",
        "template": "",
    }


def test_identity_of_a_foreign_service_is_empty():
    """A service with neither cfadmin labels nor description is not cfadmin's."""
    foreign = service(
        compose="services:\n  app:\n    image: nginx\n    labels:\n      team: web\n",
        description="the marketing site",
    )
    assert service_identity(foreign) == {}


def test_identity_description_must_start_the_text():
    """ "cfadmin stack" later in a description does not count."""
    assert service_identity(service(description="copy of cfadmin stack acme/acme-main")) == {}


def test_invalid_yaml_falls_back_to_the_description():
    """Unparsable compose is ignored; the description still identifies the service."""
    broken = service(
        compose="services: [unclosed\n  : : :",
        description="cfadmin stack acme/acme-main (base-llm 1.0.0)",
    )
    assert service_identity(broken) == {"tenant": "acme", "stack_name": "acme-main", "template": ""}


# --- find_drift: stacks cfadmin knows ------------------------------------------------------------


def test_a_stack_in_sync_has_no_drift(running):
    """Service running and record equal to cfadmin's: nothing, one stack checked."""
    assert find_drift([service()], [record_of(running)]) == ([], 1)


def test_a_status_mismatch_offers_taking_coolifys_status(running):
    """cfadmin running, Coolify exited: service_status drift with take_coolify_status."""
    drift, checked = find_drift([service(status="exited")], [record_of(running)])
    assert checked == 1
    [found] = drift
    assert found.kind == DriftKind.SERVICE_STATUS
    assert found.message == (
        "cfadmin says running, Coolify says exited. "
        "Coolify's status can lag or be wrong: check the stack's URL first."
    )
    assert found.repairs == [Repair.TAKE_COOLIFY_STATUS]
    assert found.target == f"stack:{running.pk}"
    assert (found.tenant, found.stack_name, found.record_id) == (TENANT, STACK, "rec-0001")


def test_an_unhealthy_service_is_drift_for_a_running_stack(running):
    """running:unhealthy means error, which differs from running."""
    [found], _ = find_drift([service(status="running:unhealthy")], [record_of(running)])
    assert found.kind == DriftKind.SERVICE_STATUS
    assert "Coolify says running:unhealthy" in found.message


def test_a_service_on_its_way_is_not_drift(running):
    """A service whose start or restart job is running is moving, not drifting."""
    assert find_drift([service(status="starting:unhealthy")], [record_of(running)]) == ([], 1)


def test_an_error_stack_whose_service_runs_is_drift(running):
    """cfadmin error, Coolify healthy: the stack may take Coolify's status."""
    settle(running, StackStatus.ERROR)
    [found], _ = find_drift([service()], [record_of(running)])
    assert found.kind == DriftKind.SERVICE_STATUS
    assert found.message.startswith("cfadmin says error, Coolify says running:healthy.")


def test_a_missing_service_offers_mark_error(running):
    """The stack's service uuid is not in Coolify: missing_service with mark_error."""
    [found], checked = find_drift([], [record_of(running)])
    assert checked == 1
    assert found.kind == DriftKind.MISSING_SERVICE
    assert found.repairs == [Repair.MARK_ERROR]
    assert found.message.startswith(
        f"cfadmin says running, but Coolify has no service {SERVICE_UUID}."
    )
    assert found.service_uuid == SERVICE_UUID and found.target == f"stack:{running.pk}"


def test_a_missing_service_of_an_error_stack_offers_no_repair(running):
    """Already error: the drift stays visible but there is nothing to mark."""
    settle(running, StackStatus.ERROR)
    [found], _ = find_drift([], [record_of(running)])
    assert found.kind == DriftKind.MISSING_SERVICE
    assert found.repairs == []


def test_a_missing_record_offers_push_record(running):
    """No PocketBase record: missing_record with push_record and no record id."""
    [found], _ = find_drift([service()], [])
    assert found.kind == DriftKind.MISSING_RECORD
    assert found.repairs == [Repair.PUSH_RECORD]
    assert found.record_id == ""
    assert found.message == "PocketBase has no agent_stacks record for this stack."


def test_a_record_of_the_same_stack_under_another_tenant_does_not_count(running):
    """Records are matched by tenant and stack name together."""
    other = record_of(running, tenant="someone-else")
    drift, _ = find_drift([service()], [other])
    kinds = sorted(d.kind for d in drift)
    assert kinds == [DriftKind.MISSING_RECORD, DriftKind.ORPHAN_RECORD]


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("status", "stopped", "status: 'stopped' ≠ 'running'"),
        ("template", "base-llm", "template: 'base-llm' ≠ 'openclaw-agent'"),
        ("project_uuid", "proj-other", f"project_uuid: 'proj-other' ≠ '{PROJECT_UUID}'"),
        ("service_uuid", "svc-other", f"service_uuid: 'svc-other' ≠ '{SERVICE_UUID}'"),
        ("domains", ["old.customer123.com"], f"domains: ['old.customer123.com'] ≠ ['{DOMAIN}']"),
    ],
)
def test_each_compared_record_field_is_reported(running, field, value, shown):
    """One differing field: record_differs naming it, with push_record."""
    [found], _ = find_drift([service()], [record_of(running, **{field: value})])
    assert found.kind == DriftKind.RECORD_DIFFERS
    assert found.repairs == [Repair.PUSH_RECORD]
    assert found.record_id == "rec-0001"
    assert found.message == "PocketBase record differs (PocketBase ≠ cfadmin): " + shown


def test_several_differing_fields_are_listed_together(running):
    """Status and template both differ: one row, both named, in field order."""
    [found], _ = find_drift([service()], [record_of(running, status="error", template="base-llm")])
    assert found.message.endswith(
        "status: 'error' ≠ 'running'; template: 'base-llm' ≠ 'openclaw-agent'"
    )


def test_fields_not_compared_are_ignored(running):
    """django_id is not one of the compared fields."""
    assert find_drift([service()], [record_of(running, django_id=99999)]) == ([], 1)


def test_domains_are_compared_in_any_order(make_stack):
    """The same domains in another order are not drift."""
    stack = make_stack(TENANT, STACK, domains={"webui": "a.example.com", "api": "b.example.com"})
    settle(stack, coolify_service_uuid=SERVICE_UUID, coolify_project_uuid=PROJECT_UUID)
    record = record_of(stack)
    record["domains"] = list(reversed(record["domains"]))  # the opposite of cfadmin's order
    assert sorted(record["domains"]) == ["a.example.com", "b.example.com"]
    assert find_drift([service()], [record]) == ([], 1)


def test_a_missing_domain_in_the_record_is_drift(make_stack):
    """One of two domains missing from the record is record_differs."""
    stack = make_stack(TENANT, STACK, domains={"webui": "a.example.com", "api": "b.example.com"})
    settle(stack, coolify_service_uuid=SERVICE_UUID, coolify_project_uuid=PROJECT_UUID)
    [found], _ = find_drift([service()], [record_of(stack, domains=["a.example.com"])])
    assert found.kind == DriftKind.RECORD_DIFFERS
    assert "domains:" in found.message


def test_empty_record_values_equal_cfadmins_empty_values(make_stack):
    """None and "" compare equal for the uuids (a record PocketBase returns with nulls)."""
    stack = settle(make_stack(TENANT, STACK), StackStatus.ERROR)
    assert find_drift([], [record_of(stack, project_uuid=None, service_uuid=None)]) == ([], 1)


def test_a_null_domains_field_equals_no_domains(make_stack):
    """No domains in cfadmin and a null domains field in PocketBase are the same thing."""
    stack = settle(make_stack(TENANT, STACK), StackStatus.ERROR)
    assert find_drift([], [record_of(stack, domains=None)]) == ([], 1)


def test_a_stack_without_a_service_uuid_is_only_compared_with_its_record(make_stack):
    """No service uuid yet: no missing_service, only the record is checked."""
    stack = settle(make_stack(TENANT, STACK), StackStatus.ERROR)
    assert find_drift([], [record_of(stack)]) == ([], 1)


# --- find_drift: orphans -------------------------------------------------------------------------


def test_an_orphan_service_of_cfadmin_offers_import(db):
    """A labelled service no stack knows: orphan_service naming its tenant and stack."""
    orphan = cfadmin_service("svc-lost", "acme", "acme-main", "exited")
    drift, checked = find_drift([orphan], [])
    assert checked == 0
    [found] = drift
    assert found.kind == DriftKind.ORPHAN_SERVICE
    assert (found.tenant, found.stack_name) == ("acme", "acme-main")
    assert found.repairs == [Repair.IMPORT]
    assert found.target == "service:svc-lost"
    assert found.stack_id is None
    assert found.message == (
        "Coolify runs service acme-main (svc-lost, exited) that cfadmin does not know."
    )


def test_an_orphan_service_found_by_its_description(db):
    """The description alone is enough to call a service cfadmin's."""
    described = service("svc-desc", description="cfadmin stack acme/acme-main (base-llm 1.0)")
    [found], _ = find_drift([described], [])
    assert found.kind == DriftKind.ORPHAN_SERVICE
    assert found.target == "service:svc-desc"


def test_a_foreign_service_is_not_drift(running):
    """Services Coolify runs for others are ignored."""
    foreign = service("svc-foreign", description="the marketing site")
    assert find_drift([service(), foreign], [record_of(running)]) == ([], 1)


def test_a_service_named_like_a_live_stack_is_not_an_orphan(make_stack):
    """An interrupted create: the stack has no uuid yet but its service carries its name."""
    stack = settle(make_stack(TENANT, STACK), StackStatus.ERROR)
    leftover = cfadmin_service("svc-interrupted", TENANT, STACK)
    assert find_drift([leftover], [record_of(stack)]) == ([], 1)


def test_a_service_of_the_same_stack_name_under_another_tenant_is_an_orphan(running):
    """Identity matches by tenant and stack name together."""
    other = cfadmin_service("svc-other", "acme", STACK)
    [found], _ = find_drift([service(), other], [record_of(running)])
    assert found.kind == DriftKind.ORPHAN_SERVICE
    assert (found.tenant, found.stack_name) == ("acme", STACK)


def test_an_orphan_record_whose_service_exists_offers_import(running):
    """The record names a service Coolify runs and no stack owns: import it."""
    foreign = service("svc-unknown", description="made by hand")
    record = {"id": "rec-orphan", "tenant": "acme", "stack_name": "acme-main", "status": "running"}
    record["service_uuid"] = "svc-unknown"
    [found], _ = find_drift([service(), foreign], [record_of(running), record])
    assert found.kind == DriftKind.ORPHAN_RECORD
    assert found.repairs == [Repair.IMPORT]
    assert found.target == "service:svc-unknown"
    assert found.record_id == "rec-orphan"
    assert found.message == (
        "PocketBase has a record (status running) for a stack cfadmin does not know; "
        "its Coolify service exists."
    )


def test_an_orphan_record_without_a_service_offers_deleting_it(running):
    """No service for the record: delete_record, aimed at the record."""
    record = {"id": "rec-gone", "tenant": "gone", "stack_name": "gone-main", "status": ""}
    record["service_uuid"] = "svc-vanished"
    [found], _ = find_drift([service()], [record_of(running), record])
    assert found.kind == DriftKind.ORPHAN_RECORD
    assert found.repairs == [Repair.DELETE_RECORD]
    assert found.service_uuid == ""
    assert found.target == "record:rec-gone"
    assert found.message == (
        "PocketBase has a record (status ?) for a stack cfadmin does not know; "
        "Coolify has no service for it."
    )


def test_an_orphan_record_pointing_at_a_known_stacks_service_is_not_importable(running):
    """The service belongs to a live stack already: the record can only be deleted."""
    record = {"id": "rec-dup", "tenant": "acme", "stack_name": "acme-copy", "status": "running"}
    record["service_uuid"] = SERVICE_UUID
    [found], _ = find_drift([service()], [record_of(running), record])
    assert found.repairs == [Repair.DELETE_RECORD]
    assert found.target == "record:rec-dup"


def test_an_orphan_service_and_its_record_are_one_row(db):
    """Importing the service covers its record: only the orphan_service row is listed."""
    orphan = cfadmin_service("svc-lost", "acme", "acme-main")
    record = {"id": "rec-lost", "tenant": "acme", "stack_name": "acme-main", "status": "running"}
    record["service_uuid"] = "svc-lost"
    drift, _ = find_drift([orphan], [record])
    assert [(d.kind, d.target) for d in drift] == [(DriftKind.ORPHAN_SERVICE, "service:svc-lost")]


# --- find_drift: what is skipped -----------------------------------------------------------------


@pytest.mark.parametrize(
    "status", [StackStatus.PENDING, StackStatus.DEPLOYING, StackStatus.DELETING]
)
def test_unsettled_stacks_are_skipped(make_stack, status):
    """A stack in motion is neither counted nor reported, though its service and record lack."""
    stack = settle(make_stack(TENANT, STACK), status, coolify_service_uuid=SERVICE_UUID)
    assert find_drift([], []) == ([], 0)
    assert Stack.objects.get(pk=stack.pk).status == status


@pytest.mark.parametrize("op_status", [OperationStatus.QUEUED, OperationStatus.RUNNING])
def test_stacks_with_an_operation_in_flight_are_skipped(running, op_status):
    """A settled stack with a queued or running operation is left alone, record included."""
    Operation.objects.create(
        stack=running, kind=OperationKind.RESTART, status=op_status, requested_by_repr="t"
    )
    stale = record_of(running, status="stopped")
    assert find_drift([service(status="exited")], [stale]) == ([], 0)


def test_a_finished_operation_does_not_skip_the_stack(running):
    """Succeeded operations are history: the stack is compared."""
    Operation.objects.create(
        stack=running,
        kind=OperationKind.RESTART,
        status=OperationStatus.SUCCEEDED,
        requested_by_repr="t",
    )
    drift, checked = find_drift([service()], [])
    assert checked == 1
    assert [d.kind for d in drift] == [DriftKind.MISSING_RECORD]


def test_deleted_stacks_are_ignored(running):
    """A deleted stack with no service and no record is not drift and not counted."""
    settle(running, StackStatus.DELETED)
    assert find_drift([], []) == ([], 0)


def test_a_deleted_stacks_leftover_service_is_an_orphan(running):
    """Its labelled service still in Coolify is reported as an orphan service."""
    settle(running, StackStatus.DELETED)
    leftover = cfadmin_service(SERVICE_UUID, TENANT, STACK)
    drift, checked = find_drift([leftover], [])
    assert checked == 0
    assert [(d.kind, d.target, d.stack_id) for d in drift] == [
        (DriftKind.ORPHAN_SERVICE, f"service:{SERVICE_UUID}", None)
    ]


def test_the_count_is_of_the_stacks_compared(make_stack):
    """Three live stacks, one deploying, one deleted: two checked."""
    for n, status in enumerate(
        [StackStatus.RUNNING, StackStatus.STOPPED, StackStatus.DEPLOYING, StackStatus.DELETED]
    ):
        settle(make_stack(f"tenant-{n}", f"tenant-{n}-main"), status)
    records = [
        {"id": f"r{n}", "tenant": f"tenant-{n}", "stack_name": f"tenant-{n}-main"} for n in range(2)
    ]
    drift, checked = find_drift([], records)
    assert checked == 2
    # Records of those two differ in status/template; the deleted stack has no row.
    assert sorted((d.kind, d.tenant) for d in drift) == [
        (DriftKind.RECORD_DIFFERS, "tenant-0"),
        (DriftKind.RECORD_DIFFERS, "tenant-1"),
    ]


# --- Drift ---------------------------------------------------------------------------------------


def test_drift_target_prefers_the_stack():
    """stack_id wins over service and record (also stack id 0)."""
    assert (
        Drift("k", "t", "s", "m", stack_id=7, service_uuid="u", record_id="r").target == "stack:7"
    )
    assert Drift("k", "t", "s", "m", stack_id=0, service_uuid="u").target == "stack:0"


def test_drift_target_falls_back_to_service_then_record():
    """No stack: the service; no service either: the record."""
    assert Drift("k", "t", "s", "m", service_uuid="u-1", record_id="r").target == "service:u-1"
    assert Drift("k", "t", "s", "m", record_id="r-1").target == "record:r-1"


def test_drift_as_dict_holds_every_field_and_the_target():
    """as_dict is what a ReconcileRun stores."""
    drift = Drift(DriftKind.MISSING_RECORD, "t", "s", "msg", [Repair.PUSH_RECORD], stack_id=3)
    assert drift.as_dict() == {
        "kind": "missing_record",
        "tenant": "t",
        "stack_name": "s",
        "message": "msg",
        "repairs": ["push_record"],
        "stack_id": 3,
        "service_uuid": "",
        "record_id": "",
        "target": "stack:3",
    }


def test_drift_repairs_are_not_shared_between_instances():
    """The default list is per instance."""
    first, second = Drift("k", "t", "s", "m"), Drift("k", "t", "s", "m")
    first.repairs.append(Repair.IMPORT)
    assert second.repairs == []


# --- run_reconcile -------------------------------------------------------------------------------


def test_run_reconcile_stores_the_drift(running):
    """Drift as dicts, stacks checked, the actor, the note and when it finished."""
    run = reconcile.run_reconcile(
        actor="tester",
        note="after a repair",
        coolify=StubCoolify([service()]),
        pocketbase=StubPocketBase(),
    )
    run = ReconcileRun.objects.get(pk=run.pk)
    assert run.error == ""
    assert run.stacks_checked == 1
    assert [d["kind"] for d in run.drift] == [DriftKind.MISSING_RECORD]
    assert run.drift[0]["target"] == f"stack:{running.pk}"
    assert (run.requested_by_repr, run.note) == ("tester", "after a repair")
    assert run.finished_at is not None and run.finished_at >= run.started_at


def test_run_reconcile_in_sync_stores_no_drift(running):
    """In sync: an empty list, one stack checked."""
    run = reconcile.run_reconcile(
        actor=None,
        coolify=StubCoolify([service()]),
        pocketbase=StubPocketBase([record_of(running)]),
    )
    run.refresh_from_db()
    assert (run.drift, run.stacks_checked, run.requested_by_repr) == ([], 1, "system")


@pytest.mark.parametrize("side", ["coolify", "pocketbase"])
def test_run_reconcile_reports_a_client_error(running, side):
    """A remote that cannot be read: error stored, no drift, still finished."""
    boom = ClientError("boom", service="Coolify" if side == "coolify" else "PocketBase")
    coolify = StubCoolify([service()], error=boom if side == "coolify" else None)
    pocketbase = StubPocketBase(error=boom if side == "pocketbase" else None)
    run = reconcile.run_reconcile(actor="tester", coolify=coolify, pocketbase=pocketbase)
    run.refresh_from_db()
    assert run.error == ("Coolify: boom" if side == "coolify" else "PocketBase: boom")
    assert (run.drift, run.stacks_checked) == ([], 0)
    assert run.finished_at is not None


def test_run_reconcile_without_settings_reports_not_raises(db, settings):
    """No COOLIFY_URL: the missing setting is the run's error."""
    settings.COOLIFY_URL = ""
    run = reconcile.run_reconcile(actor="tester")
    assert run.error == "Coolify: COOLIFY_URL is not set"
    assert run.finished_at is not None


def test_run_reconcile_prunes_runs_older_than_30_days(db):
    """Runs started over 30 days ago are deleted; younger ones stay."""
    now = timezone.now()
    old = ReconcileRun.objects.create(requested_by_repr="x", started_at=now - timedelta(days=31))
    young = ReconcileRun.objects.create(requested_by_repr="x", started_at=now - timedelta(days=29))
    run = reconcile.run_reconcile(
        actor="tester", coolify=StubCoolify(), pocketbase=StubPocketBase()
    )
    assert set(ReconcileRun.objects.values_list("pk", flat=True)) == {young.pk, run.pk}
    assert not ReconcileRun.objects.filter(pk=old.pk).exists()


# --- repair: refusals and stubbed repairs --------------------------------------------------------


def fix(kind: str, target: str, coolify=None, pocketbase=None) -> str:
    return reconcile.repair(
        kind,
        target,
        actor="tester",
        coolify=coolify or StubCoolify(),
        pocketbase=pocketbase or StubPocketBase(),
    )


@pytest.mark.parametrize("target", ["record:rec-1", "service:svc-1", "stack:abc", "nonsense"])
def test_a_stack_repair_on_something_else_is_refused(db, target):
    """push_record applies to a stack only."""
    with pytest.raises(
        RepairRefused, match=r"^Write cfadmin's record to PocketBase applies to a stack\.$"
    ):
        fix(Repair.PUSH_RECORD, target)


def test_import_needs_a_service(db):
    """Import of a stack or record target is refused."""
    with pytest.raises(RepairRefused, match=re.escape("Import needs a Coolify service to adopt.")):
        fix(Repair.IMPORT, "record:rec-1")


def test_delete_record_needs_a_record(running):
    """delete_record of a stack target is refused, and nothing is deleted."""
    pocketbase = StubPocketBase()
    with pytest.raises(RepairRefused, match="Only an orphan PocketBase record can be deleted"):
        fix(Repair.DELETE_RECORD, f"stack:{running.pk}", pocketbase=pocketbase)
    assert pocketbase.deleted == []


def test_a_repair_of_a_stack_that_does_not_exist_is_refused(db):
    """An unknown stack id is gone."""
    with pytest.raises(RepairRefused, match=re.escape("The stack is gone or deleted.")):
        fix(Repair.PUSH_RECORD, "stack:999999")


def test_a_repair_of_a_deleted_stack_is_refused(running):
    """A deleted stack is never repaired; nothing is written."""
    settle(running, StackStatus.DELETED)
    pocketbase = StubPocketBase()
    with pytest.raises(RepairRefused, match=re.escape("The stack is gone or deleted.")):
        fix(Repair.PUSH_RECORD, f"stack:{running.pk}", pocketbase=pocketbase)
    assert pocketbase.upserts == []


def test_a_repair_of_a_stack_with_an_operation_in_flight_is_refused(running):
    """Queued operation: reconcile again when it ends."""
    Operation.objects.create(stack=running, kind=OperationKind.STOP, requested_by_repr="t")
    pocketbase = StubPocketBase()
    with pytest.raises(RepairRefused, match="has an operation in flight"):
        fix(Repair.PUSH_RECORD, f"stack:{running.pk}", pocketbase=pocketbase)
    assert pocketbase.upserts == []


def test_a_repair_of_a_deploying_stack_is_refused(running):
    """An unsettled status refuses like an operation in flight."""
    settle(running, StackStatus.DEPLOYING)
    with pytest.raises(RepairRefused, match=f"{TENANT}/{STACK} has an operation in flight"):
        fix(Repair.MARK_ERROR, f"stack:{running.pk}")


def test_an_unknown_repair_of_a_stack_is_refused(running):
    """A kind reconcile does not know is refused by name."""
    with pytest.raises(RepairRefused, match=re.escape("Unknown repair 'bogus'.")):
        fix("bogus", f"stack:{running.pk}")


def test_an_unknown_repair_of_a_service_is_refused(db):
    """repair() promises RepairRefused when a repair does not apply, whatever the target."""
    with pytest.raises(RepairRefused):
        fix("bogus", "service:svc-1")


def test_push_record_writes_cfadmins_record(running):
    """push_record upserts the record cfadmin would write and keeps its id."""
    pocketbase = StubPocketBase()
    done = fix(Repair.PUSH_RECORD, f"stack:{running.pk}", pocketbase=pocketbase)
    assert done == "Wrote the PocketBase record from cfadmin (status running)."
    [written] = pocketbase.upserts
    assert (written["tenant"], written["status"], written["domains"]) == (
        TENANT,
        "running",
        [DOMAIN],
    )
    assert Stack.objects.get(pk=running.pk).pocketbase_id == "rec-written"
    assert AuditEvent.objects.filter(message=f"Reconcile: {done}", stack_name=STACK).exists()


def test_take_coolify_status_refuses_when_they_agree_again(running):
    """The service is healthy again: nothing to take."""
    with pytest.raises(RepairRefused, match="already agrees with Coolify"):
        fix(Repair.TAKE_COOLIFY_STATUS, f"stack:{running.pk}", coolify=StubCoolify([service()]))


def test_take_coolify_status_refuses_when_the_service_is_gone(running):
    """The service vanished since the report."""
    with pytest.raises(RepairRefused, match="The Coolify service is gone now"):
        fix(Repair.TAKE_COOLIFY_STATUS, f"stack:{running.pk}", coolify=StubCoolify())


def test_take_coolify_status_moves_the_stack(running):
    """Coolify says exited: the stack becomes stopped and the record is written."""
    pocketbase = StubPocketBase()
    coolify = StubCoolify([service(status="exited")])
    done = fix(Repair.TAKE_COOLIFY_STATUS, f"stack:{running.pk}", coolify, pocketbase)
    assert done == f"{TENANT}/{STACK}: status running → stopped, as Coolify says."
    assert Stack.objects.get(pk=running.pk).status == StackStatus.STOPPED
    assert [r["status"] for r in pocketbase.upserts] == ["stopped"]


def test_mark_error_refuses_when_the_service_is_back(running):
    """The service exists again: the stack is not marked."""
    with pytest.raises(RepairRefused, match="The Coolify service exists now"):
        fix(Repair.MARK_ERROR, f"stack:{running.pk}", coolify=StubCoolify([service()]))
    assert Stack.objects.get(pk=running.pk).status == StackStatus.RUNNING


def test_mark_error_marks_a_stack_whose_service_is_gone(running):
    """No service: the stack becomes error and its record says so."""
    pocketbase = StubPocketBase()
    done = fix(Repair.MARK_ERROR, f"stack:{running.pk}", pocketbase=pocketbase)
    assert done == f"{TENANT}/{STACK}: marked error; its Coolify service is gone."
    assert Stack.objects.get(pk=running.pk).status == StackStatus.ERROR
    assert [r["status"] for r in pocketbase.upserts] == ["error"]


def test_delete_record_refuses_a_record_cfadmin_knows_now(running):
    """The record's stack is live in cfadmin: not orphan, not deleted."""
    pocketbase = StubPocketBase([record_of(running)])
    with pytest.raises(RepairRefused, match="the record is not orphan"):
        fix(Repair.DELETE_RECORD, "record:rec-0001", pocketbase=pocketbase)
    assert pocketbase.deleted == []


def test_delete_record_refuses_when_its_service_runs(db):
    """A service runs for the record: import instead."""
    record = {"id": "rec-x", "tenant": "acme", "stack_name": "acme-main", "service_uuid": "svc-x"}
    pocketbase = StubPocketBase([record])
    with pytest.raises(RepairRefused, match="import it instead"):
        fix(Repair.DELETE_RECORD, "record:rec-x", StubCoolify([service("svc-x")]), pocketbase)
    assert pocketbase.deleted == []


def test_delete_record_deletes_an_orphan_record(db):
    """An orphan record without a service is deleted, and audited."""
    record = {"id": "rec-x", "tenant": "acme", "stack_name": "acme-main", "status": "running"}
    pocketbase = StubPocketBase([record])
    done = fix(Repair.DELETE_RECORD, "record:rec-x", pocketbase=pocketbase)
    assert done == "Deleted orphan PocketBase record rec-x (acme/acme-main)."
    assert pocketbase.deleted == ["rec-x"]
    assert AuditEvent.objects.filter(tenant_slug="acme", message=f"Reconcile: {done}").exists()


def test_import_of_a_service_coolify_no_longer_has_is_refused(db):
    """Import looks again: a vanished service is refused."""
    with pytest.raises(RepairRefused, match="Coolify has no service svc-gone"):
        fix(Repair.IMPORT, "service:svc-gone")


def test_a_stack_changed_moments_ago_is_not_compared_with_coolifys_lagging_status(running):
    """Coolify's status lags a start or stop by up to a minute: no status drift yet."""
    settle(running, updated_at=timezone.now() - timedelta(seconds=30))
    assert find_drift([service(status="exited")], [record_of(running)]) == ([], 1)


def test_an_error_stack_whose_service_is_exited_is_not_drift(running):
    """Both say it does not run: taking "stopped" would only erase the error's detail."""
    settle(running, StackStatus.ERROR, status_detail="wait healthy timed out")
    record = {**record_of(running), "status": "error"}
    assert find_drift([service(status="exited")], [record]) == ([], 1)


def test_a_duplicate_service_of_a_live_stack_is_reported_without_import(running):
    """A second cfadmin-made service for a stack that already has one: shown, not importable."""
    duplicate = service(uuid="dup-0002", description=f"cfadmin stack {TENANT}/{STACK} (x)")
    [found], _ = find_drift([service(), duplicate], [record_of(running)])
    assert found.kind == DriftKind.ORPHAN_SERVICE and found.service_uuid == "dup-0002"
    assert found.repairs == []
    assert f"a duplicate: stack {TENANT}/{STACK} uses service {SERVICE_UUID}" in found.message


def test_an_orphan_record_of_a_live_stacks_service_is_called_a_duplicate(running):
    """A record under another name pointing at a live stack's service: deletable."""
    stray = {**record_of(running), "id": "rec-stray", "stack_name": "old-name"}
    drift, _ = find_drift([service()], [record_of(running), stray])
    [found] = drift
    assert found.kind == DriftKind.ORPHAN_RECORD and found.repairs == [Repair.DELETE_RECORD]
    assert f"its service belongs to stack {TENANT}/{STACK}: a stale duplicate." in found.message


@pytest.mark.parametrize(
    "compose",
    [
        "services: [a, b]\n",
        "services:\n  agent: just-a-string\n",
        "services:\n  agent:\n    labels:\n      - {cf.stack: x}\n",
        "- not\n- a mapping\n",
    ],
)
def test_odd_compose_files_from_other_tools_are_not_cfadmins(compose):
    """Malformed or foreign compose never raises: the service is simply not cfadmin's."""
    assert service_identity(service(compose=compose)) == {}


@pytest.mark.django_db
def test_an_unexpected_error_still_ends_the_run(monkeypatch):
    """A bug or odd data must not leave a run that looks like "in sync" forever."""

    def boom(services, records):
        raise KeyError("secret-looking-value")

    monkeypatch.setattr(reconcile.runs, "find_drift", boom)
    run = reconcile.run_reconcile(actor="t", coolify=StubCoolify(), pocketbase=StubPocketBase())
    assert run.finished_at is not None and run.drift == []
    assert run.error == "KeyError while comparing; the worker log has the details."
