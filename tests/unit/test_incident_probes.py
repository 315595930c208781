"""The automatic items of the emergency and security procedures (issue 15 point 9): each probe
passes, fails or cannot tell (None, saying why) as the incident's actions went; the API key
exposure procedure verifies its rotation items once every rotation succeeded; migration 0016
makes a new version of each procedure once, and old runs keep theirs."""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass

import pytest
from django.apps import apps as django_apps

from ops import checklists, probes, probes_incident
from ops.health import CheckOutcome
from ops.models import (
    ChecklistItem,
    ChecklistRun,
    CheckStatus,
    ItemState,
    Probe,
    Procedure,
)
from ops.probes import run_probe
from ops.procedures import RUNBOOK_PROCEDURES
from stacks.choices import StackStatus
from tests.unit.incident_helpers import make_incident

FOLLOW = importlib.import_module("ops.migrations.0016_procedures_follow")


@dataclass
class FakeRotation:
    stack: str
    key: str
    state: str


@dataclass
class FakeEvidence:
    title: str
    sha256: str


def run_in(incident, stack=None) -> ChecklistRun:
    procedure = Procedure.objects.get(slug="suspected-container-compromise", active=True)
    return checklists.start_run(procedure, actor="test", incident=incident, stack=stack)


def has_field(model_path: str, field: str) -> bool:
    module, _, name = model_path.rpartition(".")
    model = getattr(importlib.import_module(module), name, None)
    return model is not None and probes_incident._has_field(model, field)


# --- outside an incident, or a part not installed: cannot tell --------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "probe", [Probe.EVIDENCE_CAPTURED, Probe.KEYS_ROTATED, Probe.PATTERN_IDENTIFIED]
)
def test_incident_probes_cannot_tell_outside_an_incident(probe):
    procedure = Procedure.objects.get(slug="api-key-exposure", active=True)
    run = checklists.start_run(procedure, actor="test")

    assert run_probe(probe, run) == (None, {"note": "this checklist run is not inside an incident"})


@pytest.mark.django_db
@pytest.mark.parametrize("probe", [Probe.STACKS_ISOLATED, Probe.STACKS_STOPPED])
def test_stack_probes_cannot_tell_without_a_stack(probe):
    run = run_in(make_incident())

    assert run_probe(probe, run) == (None, {"note": "no stack is linked to the incident"})


@pytest.mark.django_db
def test_a_part_not_installed_is_cannot_tell_not_a_crash(monkeypatch, make_stack):
    incident = make_incident()
    incident.stacks.add(make_stack())
    run = run_in(incident)

    with pytest.raises(probes_incident.CannotTell, match="not installed"):
        probes_incident._related_rows(incident, "no_such_rows", "sha256", "something")
    monkeypatch.setattr(probes_incident, "_has_field", lambda model, name: False)
    for probe in (Probe.EVIDENCE_CAPTURED, Probe.KEYS_ROTATED, Probe.STACKS_ISOLATED):
        passed, evidence = run_probe(probe, run)
        assert passed is None and "not installed" in evidence["note"], probe
    monkeypatch.setitem(sys.modules, "stacks.services.recovery", None)  # import fails
    passed, evidence = run_probe(Probe.VOLUME_EXISTS, run)
    assert passed is None and "recovery is not installed" in evidence["note"]


# --- each probe: pass and fail -------------------------------------------------------------------


@pytest.mark.django_db
def test_evidence_captured(monkeypatch):
    run = run_in(make_incident())
    found: list[FakeEvidence] = []
    monkeypatch.setattr(probes_incident, "_evidence_items", lambda incident: found)

    passed, evidence = run_probe(Probe.EVIDENCE_CAPTURED, run)
    assert passed is False and "no evidence" in evidence["error"]

    found.append(FakeEvidence("logs of webui", "ab" * 32))
    assert run_probe(Probe.EVIDENCE_CAPTURED, run) == (
        True,
        {"items": [f"logs of webui sha256:{'ab' * 32}"]},
    )


@pytest.mark.django_db
@pytest.mark.skipif(
    not has_field("ops.models.evidence.EvidenceItem", "sha256"), reason="evidence not landed"
)
def test_evidence_captured_reads_the_evidence_model(make_stack):
    from ops.models.evidence import EvidenceItem

    incident = make_incident()
    run = run_in(incident)
    assert run_probe(Probe.EVIDENCE_CAPTURED, run)[0] is False

    item = EvidenceItem.objects.create(
        incident=incident, kind="logs", title="webui logs", content="x", captured_by_repr="t"
    )
    assert run_probe(Probe.EVIDENCE_CAPTURED, run) == (
        True,
        {"items": [f"webui logs sha256:{item.sha256}"]},
    )


@pytest.mark.django_db
@pytest.mark.skipif(
    not has_field("ops.models.leaks.LeakRotation", "key"), reason="leaks not landed"
)
def test_keys_rotated_reads_the_rotations_and_their_operations(make_stack):
    from ops.models.leaks import LeakRotation
    from stacks.choices import OperationKind, OperationStatus
    from stacks.models import Operation

    incident = make_incident()
    run = run_in(incident)
    rotations = []
    for tenant in ("tenant-a", "tenant-b"):
        stack = make_stack(tenant)
        operation = Operation.objects.create(
            stack=stack,
            kind=OperationKind.ROTATE_SECRETS,
            status=OperationStatus.SUCCEEDED,
            requested_by_repr="t",
        )
        rotations.append(
            LeakRotation.objects.create(
                incident=incident, stack=stack, key="BOT_TOKEN", operation=operation
            )
        )
    assert run_probe(Probe.KEYS_ROTATED, run)[0] is True

    Operation.objects.filter(pk=rotations[1].operation_id).update(status=OperationStatus.FAILED)
    passed, evidence = run_probe(Probe.KEYS_ROTATED, run)
    assert passed is False and evidence["states"] == {"succeeded": 1, "failed": 1}


@pytest.mark.django_db
def test_stacks_stopped_uses_the_runs_stack_or_every_linked_stack(make_stack):
    one = make_stack("tenant-a", status=StackStatus.STOPPED)
    two = make_stack("tenant-b", status=StackStatus.RUNNING)
    incident = make_incident()
    incident.stacks.add(one, two)

    passed, evidence = run_probe(Probe.STACKS_STOPPED, run_in(incident))
    assert passed is False and evidence["error"] == "1 of 2 not stopped"
    assert run_probe(Probe.STACKS_STOPPED, run_in(incident, stack=one))[0] is True

    two.status = StackStatus.DELETED
    two.save(update_fields=["status"])
    passed, evidence = run_probe(Probe.STACKS_STOPPED, run_in(incident))
    assert passed is True and len(evidence["stacks"]) == 2


@pytest.mark.django_db
@pytest.mark.skipif(
    not has_field("stacks.models.Stack", "containment"), reason="containment not landed"
)
def test_stacks_isolated(make_stack):
    one = make_stack("tenant-a")
    two = make_stack("tenant-b")
    incident = make_incident()
    incident.stacks.add(one, two)
    type(one).objects.filter(pk=one.pk).update(containment="isolated")

    passed, evidence = run_probe(Probe.STACKS_ISOLATED, run_in(incident))
    assert passed is False and evidence["error"] == "1 of 2 not isolated"

    type(one).objects.filter(pk=two.pk).update(containment="isolated")
    assert run_probe(Probe.STACKS_ISOLATED, run_in(incident))[0] is True


@pytest.mark.django_db
def test_keys_rotated_only_when_every_rotation_succeeded(monkeypatch):
    run = run_in(make_incident())
    rotations: list[FakeRotation] = []
    monkeypatch.setattr(probes_incident, "_rotations", lambda incident: rotations)

    passed, evidence = run_probe(Probe.KEYS_ROTATED, run)
    assert passed is False and "no rotation" in evidence["error"]

    rotations += [
        FakeRotation("t/a", "OPENAI_KEY", "succeeded"),
        FakeRotation("t/b", "K", "failed"),
    ]
    passed, evidence = run_probe(Probe.KEYS_ROTATED, run)
    assert passed is False and evidence["states"] == {"succeeded": 1, "failed": 1}

    rotations[1].state = "running"
    assert run_probe(Probe.KEYS_ROTATED, run)[0] is False

    rotations[1].state = "succeeded"
    passed, evidence = run_probe(Probe.KEYS_ROTATED, run)
    assert passed is True
    assert evidence["rotations"] == ["t/a OPENAI_KEY: succeeded", "t/b K: succeeded"]


@pytest.mark.django_db
def test_pattern_identified():
    incident = make_incident()
    run = run_in(incident)
    if not has_field("ops.models.mass_failure.MassFailure", "pattern"):
        passed, evidence = run_probe(Probe.PATTERN_IDENTIFIED, run)
        assert passed is None and "not installed" in evidence["note"]
        return
    from ops.models.mass_failure import MassFailure

    assert run_probe(Probe.PATTERN_IDENTIFIED, run)[0] is False
    MassFailure.objects.create(incident=incident, pattern={"template": {"base-llm": 5}})
    incident.refresh_from_db()
    passed, evidence = run_probe(Probe.PATTERN_IDENTIFIED, run)
    assert passed is True and evidence["pattern"] == {"template": {"base-llm": 5}}


@pytest.mark.django_db
def test_volume_exists_asks_recovery_for_each_stack(monkeypatch, make_stack):
    kept, gone = make_stack("tenant-a"), make_stack("tenant-b")
    incident = make_incident()
    incident.stacks.add(kept, gone)
    answers = {kept.pk: (True, {"volumes": ["v1"]}), gone.pk: (None, {"note": "service gone"})}
    fake = types.ModuleType("stacks.services.recovery")
    fake.volumes_exist = lambda stack: answers[stack.pk]
    monkeypatch.setitem(sys.modules, "stacks.services.recovery", fake)

    assert run_probe(Probe.VOLUME_EXISTS, run_in(incident, stack=kept)) == (
        True,
        {str(kept): {"exists": True, "volumes": ["v1"]}},
    )
    passed, evidence = run_probe(Probe.VOLUME_EXISTS, run_in(incident))
    assert passed is None and evidence[str(gone)]["note"] == "service gone"
    answers[gone.pk] = (False, {"volumes": []})
    assert run_probe(Probe.VOLUME_EXISTS, run_in(incident))[0] is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("probe", "check", "status", "passed"),
    [
        (Probe.SERVER_RESOURCES, "server_resources", CheckStatus.OK, True),
        (Probe.SERVER_RESOURCES, "server_resources", CheckStatus.WARNING, True),
        (Probe.SERVER_RESOURCES, "server_resources", CheckStatus.DOWN, False),
        (Probe.CONTAINER_RESOURCES, "container_resources", CheckStatus.OK, True),
        (Probe.CONTAINER_RESOURCES, "container_resources", CheckStatus.WARNING, False),
        (Probe.VOLUME_SIZES, "volume_sizes", CheckStatus.WARNING, True),
        (Probe.VOLUME_SIZES, "volume_sizes", CheckStatus.DOWN, False),
        (Probe.POCKETBASE_BACKUP, "pocketbase_backup", CheckStatus.OK, True),
        (Probe.POCKETBASE_BACKUP, "pocketbase_backup", CheckStatus.WARNING, False),
    ],
)
def test_health_check_items(monkeypatch, probe, check, status, passed):
    asked: list[list[str]] = []

    def run_checks(names):
        asked.append(names)
        return [CheckOutcome(check, status, "measured", True, {"top": ["x"]}, 12)]

    monkeypatch.setattr(probes, "run_checks", run_checks)
    result, evidence = run_probe(probe, run_in(make_incident()))

    assert (result, asked) == (passed, [[check]])
    assert evidence == {"status": status, "message": "measured", "details": {"top": ["x"]}}


@pytest.mark.django_db
def test_a_health_check_that_does_not_run_here_is_cannot_tell(monkeypatch):
    monkeypatch.setattr(probes, "run_checks", lambda names: [])

    passed, evidence = run_probe(Probe.POCKETBASE_BACKUP, run_in(make_incident()))

    assert passed is None and "does not run here" in evidence["note"]


# --- a run inside an incident ------------------------------------------------------------------


@pytest.mark.django_db
def test_api_key_exposure_run_verifies_rotation_once_the_rotations_succeeded(monkeypatch, support):
    incident = make_incident(support, title="Bot token leaked in a ticket")
    rotations = [FakeRotation("t/a", "BOT_TOKEN", "running")]
    monkeypatch.setattr(probes_incident, "_rotations", lambda incident: rotations)
    queued: list[tuple] = []
    procedure = Procedure.objects.get(slug="api-key-exposure", active=True)

    run = checklists.start_checklist(
        procedure, actor=support, incident=incident, enqueue=lambda *args: queued.append(args)
    )
    assert queued == [("ops.tasks.run_checklist_probes_task", run.pk)]

    def states() -> dict[str, str]:
        return dict(
            ChecklistItem.objects.filter(run=run)
            .order_by("step__position")
            .values_list("step__text", "state")
        )

    checklists.run_probes(run)
    rotate, update, audit_access, document = states().items()
    assert (rotate[1], update[1]) == (ItemState.FAILED, ItemState.FAILED)
    assert (audit_access[1], document[1]) == (ItemState.PENDING, ItemState.PENDING)

    rotations[0].state = "succeeded"
    checklists.run_probes(run)  # the run's checks again: failed items are checked again

    items = {item.step.text: item for item in run.items.select_related("step")}
    rotated = items[rotate[0]]
    assert (rotated.state, items[update[0]].state) == (ItemState.PASSED, ItemState.PASSED)
    assert rotated.evidence["probe"] == Probe.KEYS_ROTATED
    assert rotated.evidence["rotations"] == ["t/a BOT_TOKEN: succeeded"]
    assert rotated.settled_by_repr == "cfadmin probe"


# --- the procedures and migration 0016 -------------------------------------------------------


COVERED = {
    "suspected-container-compromise": ["stacks_isolated", "evidence_captured", "stacks_stopped"],
    "api-key-exposure": ["keys_rotated", "keys_rotated"],
    "mass-container-failures": ["server_resources", "pattern_identified", "stacks_stopped"],
    "data-recovery": ["volume_exists", "pocketbase_backup"],
    "complete-service-outage": ["status_update_posted", "coolify_api", "active_stacks"],
    "weekly-resource-check": ["container_resources", "volume_sizes", "container_resources"],
}


ISSUE_16_PROBES = {"status_update_posted", "maintenance_announced"}


def probes_of(procedure: Procedure) -> list[str]:
    return [probe for probe in procedure.steps.values_list("probe", flat=True) if probe]


def age_database() -> None:
    """Back to the procedures as they were before issue 15: none of their steps automatic."""
    for slug in COVERED:
        Procedure.objects.get(slug=slug, active=True).steps.update(probe="")


@pytest.mark.django_db
def test_the_seeded_procedures_have_their_automatic_items():
    for slug, expected in COVERED.items():
        assert probes_of(Procedure.objects.get(slug=slug, active=True)) == expected, slug


@pytest.mark.django_db
def test_migration_makes_a_new_version_once_and_old_runs_keep_theirs():
    count = Procedure.objects.count()
    FOLLOW.new_versions(django_apps, None)  # a fresh database already follows: nothing to do
    assert Procedure.objects.count() == count
    before = {slug: Procedure.objects.get(slug=slug, active=True) for slug in COVERED}
    age_database()
    old_run = checklists.start_run(before["api-key-exposure"], actor="test")
    untouched = Procedure.objects.get(slug="post-deploy-validation", active=True).pk

    FOLLOW.new_versions(django_apps, None)

    seeded = {slug: steps for slug, _, _, _, steps in RUNBOOK_PROCEDURES}
    for slug, old in before.items():
        new = Procedure.objects.get(slug=slug, active=True)
        assert (new.version, new.title) == (old.version + 1, old.title), slug
        assert not Procedure.objects.get(pk=old.pk).active
        assert probes_of(old) == [], slug  # the old version keeps its (aged) steps
        steps = list(new.steps.order_by("position").values_list("text", "command", "probe"))
        # 0016 predates the status page's probes (issue 16, migration 0021): without them.
        expected = [
            (text, command, "" if probe in ISSUE_16_PROBES else probe)
            for text, command, probe in seeded[slug]
        ]
        assert steps == expected, slug
    old_run.refresh_from_db()
    assert old_run.procedure_id == before["api-key-exposure"].pk
    assert old_run.items.filter(step__procedure=before["api-key-exposure"]).count() == 4
    assert Procedure.objects.get(slug="post-deploy-validation", active=True).pk == untouched

    count = Procedure.objects.count()
    FOLLOW.new_versions(django_apps, None)  # again: nothing left to follow
    assert Procedure.objects.count() == count


@pytest.mark.django_db
def test_the_migration_keeps_steps_an_admin_added():
    procedure = Procedure.objects.get(slug="api-key-exposure", active=True)
    procedure.steps.update(probe="")
    procedure.steps.create(position=9, text="Tell the provider", command="", probe="")

    FOLLOW.new_versions(django_apps, None)

    new = Procedure.objects.get(slug="api-key-exposure", active=True)
    assert new.pk != procedure.pk
    assert list(new.steps.order_by("position").values_list("position", "probe")) == [
        (1, "keys_rotated"),
        (2, "keys_rotated"),
        (3, ""),
        (4, ""),
        (9, ""),
    ]


def test_every_new_probe_is_a_choice_of_the_step_and_has_a_function():
    new = {name for names in COVERED.values() for name in names}
    assert new <= set(Probe.values)
    assert set(Probe.values) == set(probes.PROBES)


@pytest.mark.django_db
def test_a_succeeded_incident_operation_queues_the_checks_of_the_incidents_open_runs(
    monkeypatch, make_stack
):
    incident, other = make_incident(), make_incident(title="Other")
    waiting = run_in(incident)  # its isolate / capture / stop items are not verified yet
    run_in(other)
    done = run_in(incident)
    ChecklistItem.objects.filter(run=done).exclude(step__probe="").update(state=ItemState.PASSED)
    queued: list[tuple] = []
    monkeypatch.setattr("cfadmin.jobs.enqueue", lambda func, *args: queued.append((func, *args)))

    def operation(parameters):
        return types.SimpleNamespace(parameters=parameters)

    assert probes_incident.recheck_after_operation(operation({})) == 0
    assert probes_incident.recheck_after_operation(operation({"incident_id": incident.pk})) == 1
    assert queued == [("ops.tasks.run_checklist_probes_task", waiting.pk)]
    # Asked again while that request is still queued: nothing more is queued.
    assert probes_incident.recheck_after_operation(operation({"incident_id": incident.pk})) == 0
    assert len(queued) == 1
