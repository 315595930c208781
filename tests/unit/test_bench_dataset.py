"""The admin benchmark's tools (bench/): the dataset generator at a tiny scale makes rows that
hang together, and the bare admin it compares with answers with the same rows."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.urls import reverse

from bench import dataset
from bench.bare_admin import bare_url, build_site, plain_columns
from cfadmin.models import AuditEvent
from ops.health import CHECK_NAMES
from ops.models import ChecklistItem, ChecklistRun, HealthCheckResult, Incident
from stacks.choices import OperationStatus, StackStatus
from stacks.models import Operation, ReconcileRun, Stack, StackDomain, StackSecret
from tenants.models import Tenant

SPEC = dataset.TINY


@pytest.fixture
def built(db) -> dict:
    return dataset.build(SPEC, log=lambda line: None)


def test_the_generator_makes_the_counts_it_is_asked_for(built):
    assert Tenant.objects.count() == SPEC.tenants
    assert Stack.objects.count() == SPEC.stacks
    assert Operation.objects.count() == SPEC.operations
    assert AuditEvent.objects.count() == SPEC.audit_events
    assert Incident.objects.count() == SPEC.incidents
    assert ChecklistRun.objects.count() == SPEC.checklist_runs
    assert HealthCheckResult.objects.count() == SPEC.health_runs * len(CHECK_NAMES)
    assert built["counts"]["stacks"] == SPEC.stacks


def test_rows_hang_together(built):
    objects = built["objects"]
    big = Stack.objects.get(pk=objects["big_stack"])
    assert big.status == StackStatus.RUNNING
    assert big.operations.count() == SPEC.big_stack_operations
    # At most one operation in flight per stack (the database constraint held), and every
    # stack's first operation is its deploy.
    assert Operation.objects.filter(status=OperationStatus.RUNNING).count() <= SPEC.stacks
    first = Operation.objects.filter(stack=big).order_by("requested_at").first()
    assert first.kind == "deploy"
    # Deleted stacks released their domains; live ones own theirs.
    for domain in StackDomain.objects.select_related("stack"):
        assert (domain.released_at is not None) == (domain.stack.status == StackStatus.DELETED)
    # Secrets are stored encrypted and decrypt with the configured keys.
    secret = StackSecret.objects.first()
    assert secret.reveal().startswith("bench-")
    assert "bench-" not in secret.value_encrypted
    # The newest finished reconcile run is the big one, its rows in reconcile's own format.
    run = ReconcileRun.latest_finished()
    assert run.pk == objects["reconcile_run"]
    assert len(run.drift) == SPEC.drift_rows
    assert {"kind", "target", "repairs", "tenant", "stack_name"} <= set(run.drift[0])
    # Each checklist run has one item per step of its procedure.
    for run in ChecklistRun.objects.prefetch_related("items", "procedure__steps"):
        assert len(run.items.all()) == len(run.procedure.steps.all())
    assert ChecklistItem.objects.exclude(evidence={}).exists()
    assert User.objects.get(username=dataset.BENCH_USER).is_superuser


def test_the_generator_is_deterministic(db):
    def built_rows() -> tuple[list, list]:
        with transaction.atomic():
            dataset.build(SPEC, log=lambda line: None)
            rows = (
                list(
                    Stack.objects.order_by("pk").values_list(
                        "stack_name", "status", "template_name"
                    )
                ),
                list(
                    AuditEvent.objects.order_by("pk").values_list(
                        "action", "actor_repr", "tenant_slug", "stack_name"
                    )
                ),
            )
            transaction.set_rollback(True)
        return rows

    assert built_rows() == built_rows()


def test_bare_columns_are_plain_fields():
    stack_admin = admin.site._registry[Stack]
    columns = plain_columns(stack_admin)
    assert columns[0] == "stack_name"
    fields = {f.name for f in Stack._meta.concrete_fields}
    assert set(columns) <= fields | {"id"}
    assert "tenant" in columns  # tenant_link sorts by tenant__slug


@pytest.mark.urls("bench.bare_admin")
def test_bare_admin_lists_the_same_rows(built, client: Client):
    client.force_login(User.objects.get(username=dataset.BENCH_USER))
    build_site()  # every registered model gets a bare admin
    bare = client.get(bare_url(Stack))
    real = client.get(reverse("admin:stacks_stack_changelist"))
    assert bare.status_code == real.status_code == 200
    assert bare.context_data["cl"].result_count == real.context_data["cl"].result_count
    change = client.get(bare_url(Stack, "change", built["objects"]["big_stack"]))
    assert change.status_code == 200
