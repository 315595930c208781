"""The provisioning runner and each of its steps, against the in-memory fakes (tests/fakes.py).

Each step is tested alone: what it does on a clean slate, what it finds when its own result is
already there (the resume rule), and how it fails. The end-to-end flows against the simulator
and a real PocketBase live in tests/integration/test_deploy_flow.py.
"""

from __future__ import annotations

import pytest

from stacks.choices import (
    OperationKind,
    OperationStatus,
    OutboxAction,
    OutboxState,
    StackStatus,
    StepOutcome,
)
from stacks.clients.errors import ClientError, ServerError, ValidationFailed
from stacks.models import Operation, PocketBaseOutboxEntry
from stacks.provisioning import (
    OperationRunner,
    Remote,
    StepFailed,
    deploy_steps,
    hint_for,
    run_operation,
)
from stacks.remote.outbox import drain
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


# --- update_service, set_env, restart, stop -------------------------------------------------


def test_update_service_pushes_the_rendered_compose_and_domains(stack, remote, coolify):
    deployed(stack, remote)
    runner = runner_for(stack, remote, kind=OperationKind.REDEPLOY)
    runner.render()
    assert runner.update_service().outcome == StepOutcome.DONE
    (service,) = coolify.services.values()
    assert service["compose"] == runner.rendered.text
    assert any("agent.example.com" in url["url"] for url in service["urls"])


def test_update_service_without_a_service_says_deploy_first(stack, remote):
    runner = runner_for(stack, remote, kind=OperationKind.REDEPLOY)
    runner.render()
    with pytest.raises(StepFailed, match="no Coolify service") as failed:
        runner.update_service()
    assert "Deploy the stack first" in failed.value.hint


def test_set_env_without_values_is_skipped(stack, remote, coolify):
    deployed(stack, remote)
    stack.secrets.all().delete()
    runner = runner_for(stack, remote, kind=OperationKind.ROTATE_SECRETS)
    assert runner.set_env().outcome == StepOutcome.SKIPPED
    assert coolify.count("upsert_service_envs") == 1  # the deploy's only


def test_restart_records_when_it_was_asked(stack, remote, coolify):
    deployed(stack, remote)
    runner = runner_for(stack, remote, kind=OperationKind.RESTART)
    assert runner.restart().outcome == StepOutcome.DONE
    assert runner.restart_requested_at is not None
    assert coolify.count("restart_service") == 1


def test_stop_then_wait_stopped_waits_for_coolifys_job(stack, remote, coolify):
    deployed(stack, remote)
    runner = runner_for(stack, remote, kind=OperationKind.STOP)
    assert runner.stop().outcome == StepOutcome.DONE
    (service,) = coolify.services.values()
    assert "running" in service["status"]  # only queued so far
    assert runner.wait_stopped().outcome == StepOutcome.DONE
    assert service["status"] == "exited"


def test_stop_of_a_stack_without_a_service_is_skipped(stack, remote, coolify):
    runner = runner_for(stack, remote, kind=OperationKind.STOP)
    assert runner.stop().outcome == StepOutcome.SKIPPED
    assert coolify.count("stop_service") == 0


def test_create_service_refuses_to_choose_between_several_servers(
    stack, remote, coolify, monkeypatch
):
    monkeypatch.setattr(deploy_steps, "_server_cache", {})
    coolify.servers.append({"uuid": "server-2", "settings": {"is_usable": True}})
    runner = runner_for(stack, remote)
    runner.render()
    runner.ensure_project()
    with pytest.raises(StepFailed, match="2 usable servers") as failed:
        runner.create_service()
    assert "COOLIFY_SERVER_UUID" in failed.value.hint
    assert not coolify.services


# --- PocketBase: sync_pocketbase and delete_pocketbase_record --------------------------------


def all_but_the_last_step(runner: OperationRunner) -> None:
    """Run the operation as run() does, up to its PocketBase step."""
    runner._enter_working_status()
    for name, step in runner.steps()[:-1]:
        runner.run_step(name, step)


def test_sync_pocketbase_writes_the_record_and_keeps_its_id(stack, remote, pocketbase):
    deployed(stack, remote)
    (record,) = pocketbase.records.values()
    assert (record["tenant"], record["stack_name"]) == (stack.tenant.slug, stack.stack_name)
    assert record["status"] == StackStatus.RUNNING
    assert record["domains"] == ["agent.example.com"]
    assert stack.pocketbase_id == record["id"]
    assert not any(value in str(record) for value in SECRETS.values())


def test_sync_pocketbase_is_deferred_while_pocketbase_is_down(stack, remote, pocketbase):
    """The stack's status follows Coolify: it is running, and its record waits in the outbox."""
    runner = runner_for(stack, remote)
    all_but_the_last_step(runner)
    pocketbase.down = True
    assert runner.sync_pocketbase_running().outcome == StepOutcome.DEFERRED
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    (entry,) = PocketBaseOutboxEntry.objects.filter(stack=stack)
    assert (entry.state, entry.action) == (OutboxState.PENDING, OutboxAction.UPSERT)
    assert entry.record["status"] == StackStatus.RUNNING
    assert entry.attempts == 1 and "connection refused" in entry.last_error
    assert not pocketbase.records

    pocketbase.down = False
    report = drain(pocketbase, now=entry.next_attempt_at)
    assert report.delivered == [entry.pk]
    (record,) = pocketbase.records.values()
    assert record["status"] == StackStatus.RUNNING


def test_a_deploy_succeeds_while_pocketbase_is_down(stack, remote, pocketbase):
    pocketbase.down = True
    runner = runner_for(stack, remote)
    runner.run()
    operation = Operation.objects.get(pk=runner.operation.pk)
    assert operation.status == OperationStatus.SUCCEEDED
    assert operation.steps.get(name="sync_pocketbase").outcome == StepOutcome.DEFERRED
    assert PocketBaseOutboxEntry.objects.pending().filter(stack=stack).exists()


def test_a_record_pocketbase_refuses_fails_the_step_with_its_reason(stack, remote, pocketbase):
    pocketbase.fail(
        "upsert_record", ValidationFailed("status: invalid value", service="PocketBase", status=400)
    )
    runner = runner_for(stack, remote)
    all_but_the_last_step(runner)
    with pytest.raises(StepFailed, match="PocketBase refused the record") as failed:
        runner.sync_pocketbase_running()
    assert "pocketbase_setup" in failed.value.hint
    entry = PocketBaseOutboxEntry.objects.get(stack=stack)
    assert entry.state == OutboxState.REJECTED


def test_sync_pocketbase_after_a_stop_says_stopped(stack, remote, pocketbase):
    deployed(stack, remote)
    runner_for(stack, remote, kind=OperationKind.STOP).run()
    stack.refresh_from_db()
    assert stack.status == StackStatus.STOPPED
    (record,) = pocketbase.records.values()
    assert record["status"] == StackStatus.STOPPED


def test_delete_pocketbase_record_removes_it_and_tombstones_the_stack(stack, remote, pocketbase):
    deployed(stack, remote)
    record_id = stack.pocketbase_id
    runner = runner_for(stack, remote, kind=OperationKind.DELETE)
    runner.run()
    stack.refresh_from_db()
    assert stack.status == StackStatus.DELETED
    assert not pocketbase.records
    operation = Operation.objects.get(pk=runner.operation.pk)
    assert operation.result["deleted"]["pocketbase_id"] == record_id
    step = operation.steps.get(name="delete_pocketbase_record")
    assert step.outcome == StepOutcome.DONE


def test_delete_pocketbase_record_of_a_record_already_gone_is_already_done(
    stack, remote, pocketbase
):
    deployed(stack, remote)
    pocketbase.records.clear()
    runner = runner_for(stack, remote, kind=OperationKind.DELETE)
    all_but_the_last_step(runner)
    assert runner.delete_pocketbase_record().outcome == StepOutcome.ALREADY_DONE


def test_delete_pocketbase_record_waits_in_the_outbox_while_pocketbase_is_down(
    stack, remote, pocketbase
):
    deployed(stack, remote)
    runner = runner_for(stack, remote, kind=OperationKind.DELETE)
    all_but_the_last_step(runner)
    pocketbase.down = True
    assert runner.delete_pocketbase_record().outcome == StepOutcome.DEFERRED
    stack.refresh_from_db()
    assert stack.status == StackStatus.DELETED
    entry = PocketBaseOutboxEntry.objects.pending().get(stack=stack)
    assert entry.action == OutboxAction.DELETE and entry.record_id == stack.pocketbase_id

    pocketbase.down = False
    drain(pocketbase, now=entry.next_attempt_at)
    assert not pocketbase.records


# --- delete_service after a lost answer -----------------------------------------------------


def test_delete_finds_the_service_whose_create_answer_was_lost(stack, remote, coolify):
    runner = runner_for(stack, remote)
    for name, step in runner.steps()[:3]:  # render, ensure_project, create_service
        runner.run_step(name, step)
    type(stack).objects.filter(pk=stack.pk).update(coolify_service_uuid="")  # answer lost
    runner.operation.status = OperationStatus.FAILED
    Operation.objects.filter(pk=runner.operation.pk).update(status=OperationStatus.FAILED)
    stack.refresh_from_db()
    (uuid,) = coolify.services
    delete = runner_for(stack, remote, kind=OperationKind.DELETE)
    assert delete.delete_service().outcome == StepOutcome.DONE
    assert delete.stack.coolify_service_uuid == uuid
    assert delete.confirm_deleted().outcome == StepOutcome.DONE
    assert not coolify.services


# --- the runner's end: hooks, bugs, hints -----------------------------------------------------


def broken_hook(operation):
    raise RuntimeError("hook broke")


def test_a_failing_success_hook_does_not_fail_the_operation(stack, remote, settings):
    settings.OPERATION_SUCCESS_HOOKS = [f"{__name__}.broken_hook"]
    runner = runner_for(stack, remote)
    runner.run()
    assert Operation.objects.get(pk=runner.operation.pk).status == OperationStatus.SUCCEEDED


def test_a_bug_in_a_step_fails_the_operation_and_is_raised(stack, remote, coolify):
    coolify.fail("upsert_service_envs", RuntimeError("a bug"))
    runner = runner_for(stack, remote)
    with pytest.raises(RuntimeError):
        runner.run()
    operation = Operation.objects.get(pk=runner.operation.pk)
    stack.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert "internal error: RuntimeError" in operation.error
    assert "cfadmin bug" in operation.error
    assert stack.status == StackStatus.ERROR


@pytest.mark.parametrize(
    ("step", "error", "expected"),
    [
        ("set_env", ClientError("no", service="PocketBase", status=401), "PocketBase credentials"),
        ("start", ClientError("no", service="Coolify", status=403), "refused access"),
        ("start", ServerError("busy", service="Coolify", status=503), "resumes where"),
        ("render", Exception(), "audit_templates"),
        ("wait_stopped", Exception(), "Stack Not Responding"),
        ("confirm_deleted", Exception(), "retry the delete"),
        ("set_env", Exception(), "fix the cause"),
    ],
)
def test_every_failure_names_the_operators_next_move(step, error, expected):
    assert expected in hint_for(step, error)
