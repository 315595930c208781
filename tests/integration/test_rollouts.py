"""Template rollouts against the Coolify simulator and a real PocketBase (issue 17): 50 stacks in
3 rings and 4 waves a ring, in order; a failing stack halts its wave, whose rollback brings the
previous compose back (read from the simulator), then the rollout resumes; pause, resume and
cancel.

The fleet is seeded fast: each stack's service is created in the simulator with its rendered
compose (what a deploy leaves) and recorded on the stack; the rollout's redeploys then run
through the provisioning engine as the workers would (`work`: hand out background operations,
run every queued task, advance each rollout, as the minute schedule does)."""

from __future__ import annotations

import itertools
import time

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from cfadmin.models import AuditEvent
from ops.models import (
    Rollout,
    RolloutStack,
    RolloutStackStatus,
    RolloutStatus,
    WaveStatus,
)
from ops.rollouts import engine, plan
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.compose import load_manifest, render_stack
from stacks.coolify_simulator.server import Fault
from stacks.models import Operation, Stack
from stacks.models.template_release import TemplateRelease
from stacks.provisioning import run_operation
from stacks.services.dispatch import dispatch_background
from tenants.models import RolloutRing, Tenant
from tests.conftest import no_sleep

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TEMPLATE = "telegram-bot"
SECRETS = {"TELEGRAM_BOT_TOKEN": "123:rollout-test-token", "ANTHROPIC_API_KEY": "sk-rollout-test"}
MARK = "CF_TEST_RELEASE=second"  # what the new version adds to the compose
HOOK = "ops.rollouts.jobs.operation_finished"
RUN_OPERATION_TASK = "stacks.tasks.run_operation_task"


@pytest.fixture
def world(remote, coolify_sim, settings, operator):
    """Coolify's rate limit off (the budget has its own tests), the rollout hook installed."""
    coolify_sim.api.rate_limit_per_minute = 0
    settings.OPERATION_SUCCESS_HOOKS = [HOOK]
    settings.OPERATION_FAILURE_HOOKS = [HOOK]
    settings.BACKGROUND_OPERATIONS_IN_FLIGHT = 8
    return remote


def new_version() -> str:
    """A second version of the template: the on-disk files with an environment entry added."""
    current = TemplateRelease.objects.get(
        template_name=TEMPLATE, version=load_manifest(TEMPLATE).version
    )
    home = '      - "HOME=/home/node"\n'
    compose = current.compose_text.replace(home, f'{home}      - "{MARK}"\n', 1)
    assert compose != current.compose_text
    return TemplateRelease.store(TEMPLATE, current.manifest_text, compose).version


def seed(remote, make_stack, tenants: dict[str, tuple[str, int]]) -> list[Stack]:
    """Running stacks on the on-disk version, their services in the simulator."""
    coolify = remote.coolify
    server = coolify.list_servers()[0]["uuid"]
    manifest = load_manifest(TEMPLATE)
    stacks = []
    for slug, (ring, count) in tenants.items():
        tenant = Tenant.objects.create(slug=slug, name=slug, rollout_ring=ring)
        project = coolify.create_project(f"{slug}-project")
        for i in range(count):
            stack = make_stack(tenant, f"{slug}-s{i:02d}", template_name=TEMPLATE, secrets=SECRETS)
            text = render_stack(
                manifest, tenant=slug, stack_name=stack.stack_name, env_keys=list(SECRETS)
            ).text
            service = coolify.create_service(
                project_uuid=project,
                server_uuid=server,
                environment_name=django_settings.COOLIFY_ENVIRONMENT,
                name=stack.stack_name,
                description="seeded",
                compose=text,
                urls=[],
            )
            Stack.objects.filter(pk=stack.pk).update(
                status=StackStatus.RUNNING,
                template_version=manifest.version,
                coolify_project_uuid=project,
                coolify_service_uuid=service["uuid"],
            )
            stack.refresh_from_db()
            stacks.append(stack)
    OrmQ.objects.all().delete()
    return stacks


def compose_of(coolify_sim, stack: Stack) -> str:
    services = {s["uuid"]: s for s in coolify_sim.api.snapshot()["services"]}
    return services[stack.coolify_service_uuid]["docker_compose_raw"]


def work(remote) -> None:
    """One round of the workers and the minute schedule."""
    dispatch_background()
    while (row := OrmQ.objects.order_by("id").first()) is not None:
        task = row.task
        row.delete()
        if task["func"] == RUN_OPERATION_TASK:
            run_operation(task["args"][0], remote=remote, sleep=no_sleep)
        else:
            import_string(task["func"])(*task["args"], **task["kwargs"])
    import_string("ops.rollouts.jobs.advance_all_task")()


def work_until(remote, done, rounds: int = 60) -> None:
    for _ in range(rounds):
        if done():
            return
        work(remote)
    assert done(), "the rollout did not get there"


def status_of(rollout: Rollout) -> str:
    return Rollout.objects.values_list("status", flat=True).get(pk=rollout.pk)


def start(operator, sizes, **options) -> Rollout:
    options.setdefault("soak_minutes", 0)
    options.setdefault("require_validation", False)
    preview = plan.build_plan(TEMPLATE, wave_sizes=sizes, to_version=new_version(), **options)
    rollout = engine.create(preview, actor=operator)
    return engine.start(rollout, actor=operator)


def test_fifty_stacks_in_three_rings_roll_out_in_four_waves_a_ring_in_order(
    world, make_stack, coolify_sim, operator
):
    began = time.monotonic()
    stacks = seed(
        world,
        make_stack,
        {
            "zz-canary": (RolloutRing.CANARY, 5),
            "beta": (RolloutRing.STANDARD, 20),
            "alpha": (RolloutRing.STANDARD, 15),
            "aa-bank": (RolloutRing.LAST, 10),
        },
    )
    expected = (
        [f"zz-canary-s{i:02d}" for i in range(5)]
        + [f"alpha-s{i:02d}" for i in range(15)]
        + [f"beta-s{i:02d}" for i in range(20)]
        + [f"aa-bank-s{i:02d}" for i in range(10)]
    )
    preview = plan.build_plan(
        TEMPLATE, wave_sizes="1, 5%, 10%, rest", soak_minutes=0, require_validation=False,
        to_version=new_version(),
    )  # fmt: skip
    assert [label.split("/")[1] for w in preview.waves for label in w.stacks] == expected
    assert [(w.ring, w.count) for w in preview.waves] == [
        *[(RolloutRing.CANARY, n) for n in (1, 1, 1, 2)],
        *[(RolloutRing.STANDARD, n) for n in (1, 2, 4, 28)],
        *[(RolloutRing.LAST, n) for n in (1, 1, 1, 7)],
    ]
    assert preview.ring_counts == {"canary": 5, "standard": 35, "last": 10}
    assert f'+      - "{MARK}"' in preview.diff
    rollout = engine.start(engine.create(preview, actor=operator), actor=operator)
    assert rollout.waves.get(number=1).status == WaveStatus.RUNNING
    assert rollout.waves.get(number=2).status == WaveStatus.PENDING

    work_until(world, lambda: status_of(rollout) == RolloutStatus.COMPLETED)

    # Requested in order, each wave after the one before had passed.
    redeploys = Operation.objects.filter(kind=OperationKind.REDEPLOY).order_by("pk")
    assert [op.stack.stack_name for op in redeploys] == expected
    assert all(op.background for op in redeploys)
    waves = list(rollout.waves.order_by("number"))
    assert all(w.status == WaveStatus.PASSED for w in waves)
    for before, after in itertools.pairwise(waves):
        first = RolloutStack.objects.filter(wave=after).order_by("pk").first().operation
        assert first.requested_at >= before.finished_at
    for stack in stacks:
        stack.refresh_from_db()
        assert stack.template_version == rollout.to_version
        assert MARK in compose_of(coolify_sim, stack)
    assert time.monotonic() - began < 90


def test_a_failing_stack_halts_its_wave_whose_rollback_restores_the_old_compose(
    world, make_stack, coolify_sim, operator
):
    stacks = seed(world, make_stack, {"acme": (RolloutRing.STANDARD, 6)})
    old = {s.stack_name: compose_of(coolify_sim, s) for s in stacks}
    failing = stacks[2]  # wave 2: s01, s02, s03
    coolify_sim.add_fault(
        Fault(rf"/api/v1/services/{failing.coolify_service_uuid}", "error", method="PATCH",
              times=None, status=422)
    )  # fmt: skip
    rollout = start(operator, ["1", "3", "rest"])

    work_until(world, lambda: not RolloutStack.objects.filter(
        rollout=rollout, status=RolloutStackStatus.DEPLOYING).exists()
        and status_of(rollout) == RolloutStatus.HALTED)  # fmt: skip

    rollout.refresh_from_db()
    wave2, wave3 = rollout.waves.get(number=2), rollout.waves.get(number=3)
    assert wave2.status == WaveStatus.FAILED and wave3.status == WaveStatus.PENDING
    assert "acme-s02" in rollout.status_detail
    assert not wave3.stacks.exclude(operation=None).exists()  # nothing more requested
    failed = wave2.stacks.get(stack=failing)
    assert failed.status == RolloutStackStatus.FAILED and failed.error
    moved = [s for s in stacks[1:4] if s != failing]
    assert all(MARK in compose_of(coolify_sim, s) for s in moved)  # in flight: they finished
    with pytest.raises(ValidationError, match="roll that wave back first"):
        engine.resume(rollout, actor=operator)

    coolify_sim.clear_faults()
    operations = engine.rollback(wave2, actor=operator)
    assert len(operations) == 3
    assert all(op.parameters["template_version"] == load_manifest(TEMPLATE).version
               for op in operations)  # fmt: skip
    work_until(world, lambda: rollout.waves.get(number=2).status == WaveStatus.ROLLED_BACK)

    for stack in stacks[1:4]:
        stack.refresh_from_db()
        assert stack.template_version == load_manifest(TEMPLATE).version
        assert stack.status == StackStatus.RUNNING
        assert compose_of(coolify_sim, stack) == old[stack.stack_name]
        assert MARK not in compose_of(coolify_sim, stack)

    engine.resume(rollout, actor=operator)
    work_until(world, lambda: status_of(rollout) == RolloutStatus.COMPLETED)
    for stack in stacks[4:]:
        assert MARK in compose_of(coolify_sim, stack)
    assert set(rollout.waves.get(number=2).stacks.values_list("status", flat=True)) == {
        RolloutStackStatus.ROLLED_BACK
    }
    actions = list(
        AuditEvent.objects.filter(target_id=rollout.pk, target_type__model="rollout")
        .order_by("pk")
        .values_list("changes__rollout_action", flat=True)
    )
    assert actions == ["create", "start", "halt", "rollback", "resume", "complete"]


def test_pause_holds_the_next_wave_resume_goes_on_and_cancel_stops_for_good(
    world, make_stack, coolify_sim, operator
):
    seed(world, make_stack, {"acme": (RolloutRing.STANDARD, 4)})
    rollout = start(operator, ["1", "1", "rest"])
    engine.pause(rollout, actor=operator)
    with pytest.raises(ValidationError, match="paused: it cannot be paused"):
        engine.pause(rollout, actor=operator)

    for _ in range(3):
        work(world)
    assert status_of(rollout) == RolloutStatus.PAUSED
    assert Operation.objects.filter(kind=OperationKind.REDEPLOY).count() == 1  # wave 1 only
    assert rollout.waves.get(number=1).stacks.get().status == RolloutStackStatus.PASSED
    assert rollout.waves.get(number=2).status == WaveStatus.PENDING

    engine.resume(rollout, actor=operator)
    assert rollout.waves.get(number=1).status == WaveStatus.PASSED
    assert rollout.waves.get(number=2).status == WaveStatus.RUNNING
    engine.cancel(rollout, actor=operator)
    work_until(world, lambda: not Operation.objects.filter(
        status__in=(OperationStatus.QUEUED, OperationStatus.RUNNING)).exists())  # fmt: skip

    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.CANCELLED and rollout.finished_at
    assert Operation.objects.filter(kind=OperationKind.REDEPLOY).count() == 2
    assert rollout.waves.get(number=2).stacks.get().status == RolloutStackStatus.PASSED
    assert not rollout.waves.get(number=3).stacks.exclude(operation=None).exists()
    with pytest.raises(ValidationError, match="cancelled: it cannot be resumed"):
        engine.resume(rollout, actor=operator)
    # A cancelled rollout no longer blocks a new one of the template.
    again = plan.build_plan(TEMPLATE, wave_sizes="rest", to_version=rollout.to_version)
    assert again.total == 2
    engine.create(again, actor=operator)
    with pytest.raises(ValidationError, match="finish or cancel it"):
        engine.create(again, actor=operator)


def test_stopping_withdraws_the_redeploys_no_worker_has_taken_yet(
    world, make_stack, coolify_sim, operator, settings
):
    settings.BACKGROUND_OPERATIONS_IN_FLIGHT = 1  # one with a worker, the rest requested ahead
    seed(world, make_stack, {"acme": (RolloutRing.STANDARD, 4)})
    rollout = start(operator, ["rest"])
    entries = RolloutStack.objects.filter(rollout=rollout)
    ahead = entries.filter(operation__dispatched_at__isnull=True).exclude(operation=None)
    assert ahead.exists(), "the engine requests ahead of the dispatcher"
    withdrawn = list(ahead.values_list("operation_id", flat=True))

    engine.pause(rollout, actor=operator)

    # Not one more redeploy of the new version reaches a worker while it is stopped.
    assert set(Operation.objects.filter(pk__in=withdrawn).values_list("status", flat=True)) == {
        OperationStatus.CANCELLED
    }
    assert not entries.filter(operation_id__in=withdrawn).exists()
    assert entries.filter(status=RolloutStackStatus.PENDING, operation=None).count() >= len(
        withdrawn
    )
    engine.resume(rollout, actor=operator)
    work_until(world, lambda: status_of(rollout) == RolloutStatus.COMPLETED)
    assert set(entries.values_list("status", flat=True)) == {RolloutStackStatus.PASSED}


def test_a_plain_redeploy_while_a_rollout_owns_the_version_keeps_the_stacks_own(
    world, make_stack, coolify_sim, operator
):
    """The files on disk are the rollout's target: a person's Redeploy of a stack the rollout
    has not reached (or rolled back) must not take it there behind the gates."""
    from stacks.services.operations import request_operation

    stacks = seed(world, make_stack, {"acme": (RolloutRing.STANDARD, 2)})
    older = new_version()  # here: the version the stacks run, the disk's is the target
    Stack.objects.filter(pk__in=[s.pk for s in stacks]).update(template_version=older)
    target = load_manifest(TEMPLATE).version
    preview = plan.build_plan(
        TEMPLATE,
        wave_sizes=["1", "rest"],
        to_version=target,
        soak_minutes=0,
        require_validation=False,
    )
    rollout = engine.create(preview, actor=operator)
    held = TemplateRelease.objects.get(template_name=TEMPLATE, version=target)
    assert held.held_by == f"rollout #{rollout.pk}"

    other = stacks[1]
    request_operation(other, OperationKind.REDEPLOY, actor=operator)
    work_until(world, lambda: not Operation.objects.filter(
        status__in=(OperationStatus.QUEUED, OperationStatus.RUNNING)).exists())  # fmt: skip
    other.refresh_from_db()
    assert other.template_version == older
    assert MARK in compose_of(coolify_sim, other)

    engine.start(rollout, actor=operator)
    work_until(world, lambda: status_of(rollout) == RolloutStatus.COMPLETED)
    assert set(Stack.objects.filter(pk__in=[s.pk for s in stacks]).values_list(
        "template_version", flat=True)) == {target}  # fmt: skip
    held.refresh_from_db()
    assert held.held_by == ""  # completed: the version is everyone's to deploy
