"""A validation run's link to the operation that opened it is a column (ChecklistRun.operation),
set by the success hook and followed by the run, stack and operation pages; the note is only
text. Runs opened before the column existed are linked from their note by ops migration 0010."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from ops import checklists
from ops.checklists import active_procedure, open_validation_run, start_run
from ops.models import ChecklistRun
from ops.procedures import POST_DELETE, POST_DEPLOY
from ops.run_origin import opening_operation
from ops.stack_panels import validation_run_for
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation
from tests.unit.incident_helpers import login, page

MIGRATION = importlib.import_module("ops.migrations.0010_checklistrun_operation")
BEFORE = ("ops", "0009_incident_title_search_index")
ADDED = ("ops", "0010_checklistrun_operation")


def operation_of(stack, kind=OperationKind.DEPLOY, status=OperationStatus.SUCCEEDED) -> Operation:
    return Operation.objects.create(
        stack=stack, kind=kind, status=status, requested_by_repr="operator"
    )


def typed_run(stack, note: str, actor=None) -> ChecklistRun:
    """A run a person started, whose note may read like the hook's: no link."""
    return start_run(active_procedure(POST_DEPLOY), actor=actor, stack=stack, note=note)


@pytest.fixture
def no_probes(monkeypatch):
    # The hook probes the run right away; these tests look at the run it opens only.
    monkeypatch.setattr(checklists, "run_probes", lambda run: 0)


# --- the hook ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_success_hook_links_the_run_it_opens_to_the_operation(make_stack, no_probes):
    stack = make_stack()
    deploy, delete = operation_of(stack), operation_of(stack, OperationKind.DELETE)

    run = open_validation_run(deploy)
    stored = ChecklistRun.objects.get(pk=run.pk)
    assert stored.operation == deploy and stored.procedure.slug == POST_DEPLOY
    assert stored.note == f"Opened by {deploy}"
    assert list(deploy.checklist_runs.all()) == [stored]
    assert open_validation_run(delete).operation == delete
    assert ChecklistRun.objects.get(operation=delete).procedure.slug == POST_DELETE
    assert open_validation_run(operation_of(stack, OperationKind.RESTART)) is None


@pytest.mark.django_db
def test_a_run_outlives_the_operation_that_opened_it(make_stack, no_probes):
    stack = make_stack()
    operation = operation_of(stack)
    run = open_validation_run(operation)
    operation.delete()
    run.refresh_from_db()
    assert run.operation_id is None and opening_operation(run) is None
    assert run.note.startswith("Opened by Deploy #")  # still says so, as text


# --- the pages follow the link -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_stack_and_operation_pages_follow_the_link_not_the_note(
    client, support, make_stack, no_probes
):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = operation_of(stack)
    typed = typed_run(stack, f"Opened by {operation}")
    stack_url = reverse("admin:stacks_stack_change", args=[stack.pk])
    operation_url = reverse("admin:stacks_operation_change", args=[operation.pk])
    login(client, support)

    assert validation_run_for(operation) is None
    assert "cf-stack-checklists-notice" not in page(client.get(stack_url))
    typed_url = reverse("admin:ops_checklistrun_change", args=[typed.pk])
    assert f'href="{typed_url}"' not in page(client.get(operation_url))

    run = open_validation_run(operation)
    ChecklistRun.objects.filter(pk=run.pk).update(note="")  # the link, not the note
    run_url = reverse("admin:ops_checklistrun_change", args=[run.pk])
    assert validation_run_for(operation) == run
    shown = page(client.get(stack_url))
    notice = shown.split('id="cf-stack-checklists-notice"')[1].split("</p>")[0]
    assert f"Deploy succeeded — validation run #{run.pk}" in notice and run_url in notice
    links = page(client.get(operation_url)).split('id="cf-operation-links"')[1].split("</p>")[0]
    assert f'href="{run_url}"' in links and f'href="{typed_url}"' not in links


@pytest.mark.django_db
def test_a_run_the_page_already_has_costs_no_query(
    make_stack, no_probes, django_assert_num_queries
):
    stack = make_stack()
    operation = operation_of(stack)
    run = open_validation_run(operation)
    shown = [typed_run(stack, "by hand"), ChecklistRun.objects.get(pk=run.pk)]
    with django_assert_num_queries(0):
        assert validation_run_for(operation, shown) == run
        assert opening_operation(shown[0]) is None


# --- the data migration --------------------------------------------------------------------------


def link_existing_runs(batch: int | None = None, monkeypatch=None) -> None:
    if batch is not None:
        monkeypatch.setattr(MIGRATION, "BATCH", batch)
    MIGRATION.link_runs_to_operations(apps, SimpleNamespace(connection=connection))


@pytest.mark.django_db
@pytest.mark.parametrize("batch", [None, 2])
def test_the_migration_links_the_runs_the_hook_noted_and_nothing_else(
    make_stack, monkeypatch, batch
):
    mine, other = make_stack("customer-1"), make_stack("customer-2")
    deploy, elsewhere = operation_of(mine), operation_of(other)
    delete = operation_of(mine, kind=OperationKind.DELETE)
    noted = typed_run(mine, f"Opened by {deploy}")
    padded = typed_run(mine, f"  Opened by Delete #{delete.pk}\n")
    foreign = typed_run(mine, f"Opened by {elsewhere}")  # another stack's operation
    # Ids of real operations of this stack, in notes the hook did not write.
    typed = typed_run(mine, f"Opened by a person who typed #{deploy.pk}")
    wrong_kind = typed_run(mine, f"Opened by Delete #{deploy.pk}")
    missing = typed_run(mine, "Opened by Deploy #999999")
    longer = typed_run(mine, f"Opened by {deploy} and then checked by hand")
    no_stack = ChecklistRun.objects.create(
        procedure=active_procedure(POST_DEPLOY), note=f"Opened by {deploy}", started_by_repr="x"
    )
    kept = typed_run(mine, f"Opened by {deploy}")
    ChecklistRun.objects.filter(pk=kept.pk).update(operation=delete)  # linked already: kept

    link_existing_runs(batch, monkeypatch)

    linked = dict(ChecklistRun.objects.values_list("pk", "operation_id"))
    assert linked == {
        noted.pk: deploy.pk,
        padded.pk: delete.pk,
        foreign.pk: None,
        typed.pk: None,
        wrong_kind.pk: None,
        missing.pk: None,
        longer.pk: None,
        no_stack.pk: None,
        kept.pk: delete.pk,
    }


@pytest.mark.django_db
def test_the_migration_reads_runs_by_pages_not_one_by_one(
    make_stack, monkeypatch, django_assert_max_num_queries
):
    stack = make_stack()
    operations = [operation_of(stack) for _ in range(6)]
    for operation in operations:
        typed_run(stack, f"Opened by {operation}")
    # Pages of 4: two reads of runs, two of operations, two writes and the empty last read.
    with django_assert_max_num_queries(8):
        link_existing_runs(4, monkeypatch)
    assert sorted(ChecklistRun.objects.values_list("operation_id", flat=True)) == sorted(
        operation.pk for operation in operations
    )


@pytest.mark.django_db(transaction=True)
def test_migrating_forward_links_the_runs_opened_before(make_stack):
    """The migration as `migrate` runs it: the column added, then filled."""
    stack = make_stack()
    operation = operation_of(stack)
    run = typed_run(stack, f"Opened by {operation}")
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([BEFORE])
        executor.loader.build_graph()
        executor.migrate([ADDED])
        old_apps = executor.loader.project_state(ADDED).apps
        Run = old_apps.get_model("ops", "ChecklistRun")
        assert Run.objects.get(pk=run.pk).operation_id == operation.pk
    finally:
        executor.loader.build_graph()
        executor.migrate(leaves)
