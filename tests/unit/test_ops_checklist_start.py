"""Starting a checklist run (ops.checklists.start_checklist): the subject a procedure needs,
refusals naming the field with nothing written or queued, and its automatic checks queued once.
The admin's "Start a run" and the incident page's checklist button both call it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from cfadmin.models import AuditAction, AuditEvent
from ops import checklists, incidents
from ops.models import (
    ChecklistRun,
    Incident,
    IncidentEvent,
    IncidentEventKind,
    Procedure,
    ProcedureCategory,
    ProcedureStep,
)
from ops.procedures import DAILY_HEALTH_CHECK, POST_DEPLOY
from stacks.choices import StackStatus

PROBES_TASK = "ops.tasks.run_checklist_probes_task"


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    """What is handed to the worker (no worker runs here)."""
    calls: list[tuple] = []
    monkeypatch.setattr("cfadmin.jobs.enqueue", lambda func, *args: calls.append((func, *args)))
    return calls


def procedure(slug: str) -> Procedure:
    return Procedure.objects.get(slug=slug, active=True)


def nothing_written() -> bool:
    return not ChecklistRun.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_a_procedure_without_subject_starts_and_queues_its_checks_once(support, queued):
    run = checklists.start_checklist(procedure(DAILY_HEALTH_CHECK), actor=support)

    assert (run.procedure.slug, run.tenant, run.stack, run.started_by) == (
        DAILY_HEALTH_CHECK,
        None,
        None,
        support,
    )
    assert run.items.count() == procedure(DAILY_HEALTH_CHECK).steps.count()
    assert queued == [(PROBES_TASK, run.pk)]
    asked = AuditEvent.objects.filter(action=AuditAction.OPERATION)
    assert [(e.message, e.actor_repr) for e in asked] == [
        ("Automatic checks requested", support.username)
    ]


@pytest.mark.django_db
def test_a_validation_run_is_for_the_typed_stack(support, make_stack, queued):
    stack = make_stack("customer-123", "customer-123-main", status=StackStatus.RUNNING)

    run = checklists.start_checklist(
        procedure(POST_DEPLOY), actor=support, stack_ref="  customer-123/customer-123-main "
    )

    assert (run.stack, run.tenant) == (stack, stack.tenant)
    assert queued == [(PROBES_TASK, run.pk)]


@pytest.mark.django_db
def test_a_run_for_a_tenant(support, make_tenant, queued):
    tenant = make_tenant("customer-9")
    run = checklists.start_checklist(
        procedure(DAILY_HEALTH_CHECK), actor=support, tenant_ref="customer-9"
    )
    assert (run.tenant, run.stack) == (tenant, None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("slug", "refs", "field", "message"),
    [
        (
            POST_DEPLOY,
            {"stack_ref": "nobody/nothing"},
            "stack",
            "No live stack 'nobody/nothing' (type tenant/stack).",
        ),
        (DAILY_HEALTH_CHECK, {"tenant_ref": "nobody"}, "tenant", "No tenant 'nobody'."),
        (
            POST_DEPLOY,
            {},
            "procedure",
            "Post-deploy validation checks one stack: give it as tenant/stack.",
        ),
        (
            POST_DEPLOY,
            {"tenant_ref": "customer-123"},
            "procedure",
            "Post-deploy validation checks one stack: give it as tenant/stack.",
        ),
    ],
)
def test_bad_subjects_are_refused_naming_the_field(
    support, make_tenant, queued, slug, refs, field, message
):
    make_tenant("customer-123")
    with pytest.raises(ValidationError) as refused:
        checklists.start_checklist(procedure(slug), actor=support, **refs)
    assert refused.value.message_dict == {field: [message]}
    assert nothing_written() and queued == []


@pytest.mark.django_db
def test_a_deleted_stack_is_not_a_subject(support, make_stack, queued):
    make_stack("customer-123", "customer-123-main", status=StackStatus.DELETED)
    with pytest.raises(ValidationError) as refused:
        checklists.start_checklist(
            procedure(POST_DEPLOY), actor=support, stack_ref="customer-123/customer-123-main"
        )
    assert list(refused.value.message_dict) == ["stack"]
    assert nothing_written()


@pytest.mark.django_db
def test_a_procedure_a_machine_cannot_check_queues_nothing(support, queued):
    manual = Procedure.objects.create(
        slug="manual", title="Manual", category=ProcedureCategory.MAINTENANCE
    )
    ProcedureStep.objects.create(procedure=manual, position=1, text="Look at it")
    assert not manual.has_probes()

    run = checklists.start_checklist(manual, actor=support)

    assert run.items.count() == 1
    assert queued == []


@pytest.mark.django_db
def test_inside_an_incident_the_run_is_about_its_one_stack(support, make_stack, queued):
    stack = make_stack("customer-123", "customer-123-main", status=StackStatus.RUNNING)
    incident = Incident(title="Down")
    incidents.prepare_new(incident, actor=support)
    incident.save()
    incident.stacks.add(stack)

    run = checklists.start_checklist(procedure(POST_DEPLOY), actor=support, incident=incident)

    assert (run.incident, run.stack, run.tenant) == (incident, stack, stack.tenant)
    assert queued == [(PROBES_TASK, run.pk)]
    assert IncidentEvent.objects.filter(
        incident=incident, kind=IncidentEventKind.CHECKLIST
    ).exists()


@pytest.mark.django_db
def test_inside_an_incident_without_one_stack_a_validation_run_is_refused(support, queued):
    incident = Incident(title="Down")
    incidents.prepare_new(incident, actor=support)
    incident.save()

    with pytest.raises(ValidationError) as refused:
        checklists.start_checklist(procedure(POST_DEPLOY), actor=support, incident=incident)

    assert list(refused.value.message_dict) == ["procedure"]
    assert not ChecklistRun.objects.exists() and queued == []
    assert not IncidentEvent.objects.exists()
