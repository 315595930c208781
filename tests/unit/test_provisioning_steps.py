"""The provisioning runner and each of its steps, against the in-memory fakes (tests/fakes.py).

Each step is tested alone: what it does on a clean slate, what it finds when its own result is
already there (the resume rule), and how it fails. The end-to-end flows against the simulator
and a real PocketBase live in tests/integration/test_deploy_flow.py.
"""

from __future__ import annotations

import pytest

from stacks.choices import OperationKind, OperationStatus, StackStatus, StepOutcome
from stacks.clients.errors import ServerError, ValidationFailed
from stacks.models import Operation
from stacks.provisioning import OperationRunner, Remote, StepFailed, run_operation
from tests.fakes import FakeCoolify, FakePocketBase

SECRETS = {"ANTHROPIC_API_KEY": "sk-unit-test-not-a-real-key"}


@pytest.fixture
def coolify() -> FakeCoolify:
    return FakeCoolify()


@pytest.fixture
def pocketbase() -> FakePocketBase:
    return FakePocketBase()


@pytest.fixture
def remote(coolify, pocketbase) -> Remote:
    return Remote(coolify=coolify, pocketbase=pocketbase)


@pytest.fixture
def stack(make_stack):
    return make_stack(domains={"webui": "agent.example.com"}, secrets=SECRETS)


def runner_for(stack, remote, kind=OperationKind.DEPLOY, **options) -> OperationRunner:
    operation = Operation.objects.create(stack=stack, kind=kind, requested_by_repr="test")
    assert Operation.objects.claim(operation.pk)
    operation.refresh_from_db()
    options.setdefault("poll_interval", 0)
    options.setdefault("health_timeout", 5)
    options.setdefault("delete_timeout", 5)
    # Time passes only when the runner waits: Coolify's queued jobs move one step per wait.
    options.setdefault("sleep", lambda _seconds: remote.coolify.tick())
    return OperationRunner(operation, remote, **options)


def deployed(stack, remote) -> None:
    """The stack as a finished deploy leaves it."""
    runner_for(stack, remote).run()
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING, stack.status_detail


# --- render ---------------------------------------------------------------------------------


def test_render_refuses_a_stack_without_its_required_secrets(make_stack, remote):
    runner = runner_for(make_stack(), remote)
    with pytest.raises(StepFailed) as failed:
        runner.render()
    assert "ANTHROPIC_API_KEY" in failed.value.reason


def test_render_records_the_template_version(stack, remote):
    runner = runner_for(stack, remote)
    assert runner.render().outcome == StepOutcome.DONE
    stack.refresh_from_db()
    assert stack.template_version == runner.manifest.version


# --- ensure_project -------------------------------------------------------------------------


def test_ensure_project_creates_it_with_a_description_coolify_accepts(stack, remote, coolify):
    outcome = runner_for(stack, remote).ensure_project()
    assert outcome.outcome == StepOutcome.DONE
    (project,) = coolify.projects.values()
    assert project["name"] == stack.project_name
    assert ":" not in project["description"]  # DESCRIPTION_PATTERN has no colon


def test_ensure_project_reuses_a_project_of_the_same_name(stack, remote, coolify):
    uuid = coolify.create_project(stack.project_name)
    outcome = runner_for(stack, remote).ensure_project()
    assert outcome.outcome == StepOutcome.ALREADY_DONE
    assert coolify.count("create_project") == 1
    stack.refresh_from_db()
    assert stack.coolify_project_uuid == uuid


def test_ensure_project_shares_the_tenants_project_without_asking_coolify(
    stack, make_stack, remote, coolify
):
    make_stack(stack.tenant, "second", coolify_project_uuid="project-77")
    outcome = runner_for(stack, remote).ensure_project()
    assert outcome.outcome == StepOutcome.ALREADY_DONE
    assert coolify.calls == []


def test_two_first_deploys_keep_the_oldest_project(stack, remote, coolify):
    oldest = coolify.create_project(stack.project_name)
    runner = runner_for(stack, remote)
    # Ours was made after the other worker looked and found nothing.
    ours = coolify.create_project(stack.project_name)
    assert runner._settle_duplicate_projects(ours) == oldest
    assert ours not in coolify.projects


# --- create_service -------------------------------------------------------------------------


def test_create_service_records_the_uuid(stack, remote, coolify):
    runner = runner_for(stack, remote)
    runner.render()
    runner.ensure_project()
    assert runner.create_service().outcome == StepOutcome.DONE
    stack.refresh_from_db()
    assert stack.coolify_service_uuid in coolify.services
    assert stack.service_create_requested_at is not None


def test_create_service_adopts_the_service_of_an_interrupted_attempt(stack, remote, coolify):
    runner = runner_for(stack, remote)
    runner.render()
    runner.ensure_project()
    runner.create_service()
    uuid = runner.stack.coolify_service_uuid
    # The answer was lost: the stack never learnt the uuid, but it had asked.
    runner._save_stack(coolify_service_uuid="")
    outcome = runner.create_service()
    assert outcome.outcome == StepOutcome.ALREADY_DONE
    assert list(coolify.services) == [uuid]
    assert coolify.count("create_service") == 1


def test_create_service_finds_the_project_again_when_it_was_deleted(stack, remote, coolify):
    runner = runner_for(stack, remote)
    runner.render()
    runner._save_stack(coolify_project_uuid="project-gone")
    assert runner.create_service().outcome == StepOutcome.DONE
    stack.refresh_from_db()
    assert stack.coolify_project_uuid in coolify.projects


def test_create_service_refuses_a_coolify_too_old_for_domains(stack, pocketbase):
    old = FakeCoolify(version=(4, 0, 0, 400))
    runner = runner_for(stack, Remote(coolify=old, pocketbase=pocketbase))
    runner.render()
    runner.ensure_project()
    with pytest.raises(Exception, match="too old"):
        runner.create_service()
    assert old.services == {}


# --- set_env --------------------------------------------------------------------------------


def test_set_env_sends_the_values_and_reports_only_the_keys(stack, remote, coolify):
    deployed(stack, remote)
    runner = runner_for(stack, remote, kind=OperationKind.ROTATE_SECRETS)
    outcome = runner.set_env()
    assert outcome.detail == "set ANTHROPIC_API_KEY"
    assert SECRETS["ANTHROPIC_API_KEY"] not in outcome.detail
    (service,) = coolify.services.values()
    assert service["envs"] == SECRETS


def test_set_env_without_a_service_says_deploy_first(stack, remote):
    with pytest.raises(StepFailed, match="no Coolify service"):
        runner_for(stack, remote).set_env()


# --- start, restart and waiting for them ------------------------------------------------------


def test_start_of_a_running_service_is_already_done(stack, remote):
    deployed(stack, remote)
    runner = runner_for(stack, remote, kind=OperationKind.START)
    assert runner.start().outcome == StepOutcome.ALREADY_DONE
    assert runner.start_requested_at is None


def test_wait_healthy_ignores_a_healthy_read_from_before_the_restart(stack, remote, coolify):
    deployed(stack, remote)
    runner = runner_for(stack, remote, kind=OperationKind.RESTART)
    runner.restart()
    # Coolify has not taken the job: it still reads the old running:healthy.
    (service,) = coolify.services.values()
    assert service["status"] == "running:healthy"
    reads_before = coolify.count("list_services")
    runner.wait_healthy()
    # It waited through exited and starting before accepting running:healthy again.
    assert coolify.count("list_services") - reads_before >= 3


def test_a_restart_that_never_runs_is_not_reported_done(stack, remote, coolify):
    deployed(stack, remote)
    runner = runner_for(
        stack, remote, kind=OperationKind.RESTART, health_timeout=0.05, sleep=lambda _s: None
    )
    runner.restart()  # queued, and time never passes for Coolify's queue
    with pytest.raises(StepFailed, match="no sign that the restart it queued has run"):
        runner.wait_healthy()


def test_wait_healthy_keeps_waiting_through_a_failed_poll(stack, remote, coolify):
    runner = runner_for(stack, remote)
    for name, step in runner.steps()[:5]:
        runner.run_step(name, step)
    coolify.fail("list_services", ServerError("busy", service="Coolify", status=503))
    assert runner.wait_healthy().outcome == StepOutcome.DONE


def test_wait_healthy_reports_coolify_not_the_service_when_no_poll_answers(stack, remote, coolify):
    runner = runner_for(stack, remote, health_timeout=0, sleep=lambda _s: None)
    for name, step in runner.steps()[:5]:
        runner.run_step(name, step)
    coolify.fail("list_services", ServerError("down for maintenance", service="Coolify"))
    with pytest.raises(StepFailed, match="down for maintenance"):
        runner.wait_healthy()


# --- stop and delete ------------------------------------------------------------------------


def test_stop_of_a_stopped_service_is_already_done(stack, remote, coolify):
    deployed(stack, remote)
    runner_for(stack, remote, kind=OperationKind.STOP).run()
    runner = runner_for(stack, remote, kind=OperationKind.STOP)
    assert runner.stop().outcome == StepOutcome.ALREADY_DONE


def test_delete_of_a_service_already_gone_is_already_done(stack, remote, coolify):
    deployed(stack, remote)
    coolify.services.clear()
    runner = runner_for(stack, remote, kind=OperationKind.DELETE)
    assert runner.delete_service().outcome == StepOutcome.ALREADY_DONE
    assert runner.confirm_deleted().outcome == StepOutcome.DONE


def test_confirm_deleted_asks_coolify_once_more_when_its_job_stalls(stack, remote, coolify):
    deployed(stack, remote)
    runner = runner_for(
        stack, remote, kind=OperationKind.DELETE, delete_timeout=1, sleep=lambda _s: None
    )
    runner.delete_service()
    coolify._jobs.clear()  # the delete job died half-way
    runner.sleep = lambda _s: coolify.tick()
    assert runner.confirm_deleted().outcome == StepOutcome.DONE
    assert coolify.count("delete_service") == 2


# --- the runner -----------------------------------------------------------------------------


def test_a_transient_failure_is_retried_within_the_step(stack, remote, coolify):
    coolify.fail("create_project", ServerError("bad gateway", service="Coolify", status=502))
    runner_for(stack, remote).run()
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    assert coolify.count("create_project") == 2


def test_a_refusal_fails_the_operation_with_the_step_and_what_to_do(stack, remote, coolify):
    coolify.fail(
        "create_service",
        ValidationFailed("Validation failed.", service="Coolify", status=422),
    )
    runner = runner_for(stack, remote)
    runner.run()
    operation = Operation.objects.get(pk=runner.operation.pk)
    stack.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert "Step 'create_service' failed" in operation.error
    assert "Next:" in operation.error
    assert stack.status == StackStatus.ERROR
    step = operation.steps.get(name="create_service")
    assert step.outcome == StepOutcome.FAILED


def test_running_an_interrupted_deploy_again_resumes_without_duplicates(stack, remote, coolify):
    runner = runner_for(stack, remote)
    for name, step in runner.steps()[:3]:  # render, ensure_project, create_service
        runner.run_step(name, step)
    # The worker died here; recovery puts the operation back in the queue.
    Operation.objects.filter(pk=runner.operation.pk).update(status=OperationStatus.QUEUED)
    assert run_operation(
        runner.operation.pk, remote=remote, poll_interval=0, sleep=lambda _s: coolify.tick()
    )
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    assert coolify.count("create_project") == 1
    assert len(coolify.services) == 1


def test_a_finished_operation_is_not_run_again(stack, remote, coolify):
    runner = runner_for(stack, remote)
    runner.run()
    calls = len(coolify.calls)
    assert run_operation(runner.operation.pk, remote=remote) is False
    assert len(coolify.calls) == calls


def test_the_stack_is_deploying_while_its_deploy_runs(stack, remote, coolify):
    seen = []
    runner = runner_for(stack, remote)
    runner.sleep = lambda _s: (
        seen.append(type(stack).objects.get(pk=stack.pk).status),
        coolify.tick(),
    )
    runner.run()
    assert seen and set(seen) == {StackStatus.DEPLOYING}
