"""The operation runner: which steps each kind runs, each step recorded and retried, and the
operation's end (succeeded or failed, the stack's status, the audit trail, PocketBase told)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from cfadmin import audit
from cfadmin.models import AuditAction
from stacks.choices import OperationKind, OperationStatus, StackStatus, StepOutcome
from stacks.clients.errors import ClientError
from stacks.clients.pacing import BACKGROUND, INTERACTIVE, calls_as
from stacks.models import Operation, OperationStep, Stack
from stacks.provisioning.containment_steps import ContainmentSteps
from stacks.provisioning.delete_steps import DeleteSteps
from stacks.provisioning.deploy_steps import DeploySteps
from stacks.provisioning.lifecycle_steps import LifecycleSteps
from stacks.provisioning.outcomes import Outcome, StepFailed, hint_for
from stacks.provisioning.pocketbase_steps import PocketBaseSteps
from stacks.remote import Remote, get_remote
from stacks.remote.outbox import deliver_soon, queue_error
from stacks.services.dispatch import dispatch_background

logger = logging.getLogger(__name__)

WORKING_STATUS = {
    OperationKind.DEPLOY: StackStatus.DEPLOYING,
    OperationKind.REDEPLOY: StackStatus.DEPLOYING,
    OperationKind.ROTATE_SECRETS: StackStatus.DEPLOYING,
    OperationKind.RESTART: StackStatus.DEPLOYING,
    OperationKind.START: StackStatus.DEPLOYING,
    OperationKind.RELEASE: StackStatus.DEPLOYING,
    OperationKind.DELETE: StackStatus.DELETING,
}


class OperationRunner(DeploySteps, LifecycleSteps, DeleteSteps, PocketBaseSteps, ContainmentSteps):
    """Runs one claimed operation's steps in order; the steps come from the mixins."""

    def steps(self) -> list[tuple[str, Callable[[], Outcome]]]:
        deploy_tail = [
            ("wait_healthy", self.wait_healthy),
            ("sync_pocketbase", self.sync_pocketbase_running),
        ]
        plans: dict[str, list[tuple[str, Callable[[], Outcome]]]] = {
            OperationKind.DEPLOY: [
                ("render", self.render),
                ("ensure_project", self.ensure_project),
                ("create_service", self.create_service),
                ("set_env", self.set_env),
                ("start", self.start),
                *deploy_tail,
            ],
            OperationKind.REDEPLOY: [
                ("render", self.render),
                ("update_service", self.update_service),
                ("set_env", self.set_env),
                ("restart", self.restart),
                *deploy_tail,
            ],
            OperationKind.ROTATE_SECRETS: [
                ("set_env", self.set_env),
                ("restart", self.restart),
                *deploy_tail,
            ],
            OperationKind.RESTART: [("restart", self.restart), *deploy_tail],
            OperationKind.START: [("start", self.start), *deploy_tail],
            OperationKind.STOP: [
                ("stop", self.stop),
                ("wait_stopped", self.wait_stopped),
                ("sync_pocketbase", self.sync_pocketbase_stopped),
            ],
            # Containment (issue 15): marked first, so nothing starts it while it runs; the
            # stored domains stay in cfadmin for RELEASE, the volumes in Coolify.
            OperationKind.ISOLATE: [
                ("mark_isolated", self.mark_isolated),
                ("remove_domains", self.remove_domains),
                ("stop", self.stop),
                ("wait_stopped", self.wait_stopped),
                ("sync_pocketbase", self.sync_pocketbase_stopped),
            ],
            OperationKind.RELEASE: [
                ("restore_domains", self.restore_domains),
                ("start", self.start),
                *deploy_tail,
                ("clear_containment", self.clear_containment),
            ],
            OperationKind.DELETE: [
                ("stop", self.stop),
                ("delete_service", self.delete_service),
                ("confirm_deleted", self.confirm_deleted),
                ("delete_pocketbase_record", self.delete_pocketbase_record),
            ],
        }
        return plans[self.operation.kind]

    def run(self) -> None:
        started = time.monotonic()
        fresh = not self.operation.current_step  # not a resumed attempt
        self._enter_working_status()
        if fresh and settings.OPERATION_START_HOOKS:
            # Marked as begun first: an attempt resumed after this is not fresh (no hook twice).
            self._beat(current_step="start_hooks")
            self._run_hooks(settings.OPERATION_START_HOOKS, "start")
        try:
            for name, step in self.steps():
                self.run_step(name, step)
        except StepFailed as failure:
            self._fail(failure, started)
            return
        except Exception as exc:  # a bug: record it, leave the stack in error, re-raise
            self._fail(
                StepFailed(
                    self.operation.current_step or "?",
                    f"internal error: {type(exc).__name__}",
                    "This is a cfadmin bug: report it with the operation id.",
                ),
                started,
            )
            raise
        self._succeed(started)

    def run_step(self, name: str, step: Callable[[], Outcome]) -> None:
        position = self.operation.steps.count() + 1
        started_at = timezone.now()
        began = time.monotonic()
        self._beat(current_step=name)
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = step()
                break
            except StepFailed as failure:
                self._record(position, name, StepOutcome.FAILED, failure.reason, started_at, began)
                raise
            except ClientError as error:
                retry = error.transient and attempt < self.step_attempts
                logger.info(
                    "operation %s step %s: %s%s",
                    self.operation.pk,
                    name,
                    error,
                    " (retrying)" if retry else "",
                )
                if retry:
                    self._beat()
                    self.sleep(min(2.0 * attempt, 10.0))
                    continue
                self._record(position, name, StepOutcome.FAILED, str(error), started_at, began)
                raise StepFailed(name, str(error), hint_for(name, error)) from None
        self._record(position, name, outcome.outcome, outcome.detail, started_at, began)

    def _record(
        self, position: int, name: str, outcome: str, detail: str, started_at: Any, began: float
    ) -> None:
        OperationStep.objects.create(
            operation=self.operation,
            position=position,
            name=name,
            outcome=outcome,
            detail=detail[:4000],
            started_at=started_at,
            duration_ms=int((time.monotonic() - began) * 1000),
        )

    def _enter_working_status(self) -> None:
        """deploying or deleting while the work runs; a stop keeps the status until it ends."""
        working = WORKING_STATUS.get(self.operation.kind)
        stack = self.stack
        if working and stack.status != working and stack.can_transition(working):
            stack.transition_to(working, detail=f"{self.operation} in progress")

    def _fail(self, failure: StepFailed, started: float) -> None:
        message = (
            f"Step '{failure.step}' failed: {failure.reason.rstrip('.')}. Next: {failure.hint}"
        )
        with transaction.atomic():
            Operation.objects.filter(pk=self.operation.pk).update(
                status=OperationStatus.FAILED,
                error=message,
                finished_at=timezone.now(),
                duration_ms=int((time.monotonic() - started) * 1000),
                result={
                    "ok": False,
                    "error": {
                        "code": "step_failed",
                        "step": failure.step,
                        "message": failure.reason,
                        "hint": failure.hint,
                    },
                },
            )
            stack = Stack.objects.select_related("tenant").get(pk=self.stack.pk)
            if stack.status != StackStatus.ERROR and stack.can_transition(StackStatus.ERROR):
                stack.transition_to(StackStatus.ERROR, detail=message)
            audit.record(
                actor=None,
                action=AuditAction.OPERATION_RESULT,
                target=self.operation,
                message=message,
            )
            entry = queue_error(stack, kind=self.operation.kind)
        deliver_soon(entry, self.pocketbase)
        self._run_hooks(settings.OPERATION_FAILURE_HOOKS, "failure")

    def _succeed(self, started: float) -> None:
        stack = Stack.objects.get(pk=self.stack.pk)
        kind = self.operation.kind
        final = {
            OperationKind.DELETE: StackStatus.DELETED,
            OperationKind.STOP: StackStatus.STOPPED,
            OperationKind.ISOLATE: StackStatus.STOPPED,
        }.get(kind, StackStatus.RUNNING)
        duration_ms = int((time.monotonic() - started) * 1000)
        with transaction.atomic():
            if stack.status != final:
                stack.transition_to(final, detail=f"{self.operation} succeeded")
            result = self.result(stack, duration_ms)
            Operation.objects.filter(pk=self.operation.pk).update(
                status=OperationStatus.SUCCEEDED,
                finished_at=timezone.now(),
                duration_ms=duration_ms,
                result=result,
                current_step="",
            )
            audit.record(
                actor=None,
                action=AuditAction.OPERATION_RESULT,
                target=self.operation,
                message=f"{self.operation.get_kind_display()} succeeded",
            )
        self._run_hooks(settings.OPERATION_SUCCESS_HOOKS, "success")

    def _run_hooks(self, paths: list[str], when: str) -> None:
        """Configured follow-ups: OPERATION_START_HOOKS as a worker starts an operation (the
        evidence of a stack about to be isolated), OPERATION_SUCCESS_HOOKS after it succeeded
        (the validation checklist), OPERATION_FAILURE_HOOKS after it failed (the requester is
        told). A failing hook is logged; it never fails the operation."""
        if not paths:
            return
        operation = Operation.objects.select_related("stack__tenant").get(pk=self.operation.pk)
        for path in paths:
            try:
                import_string(path)(operation)
            except Exception:
                logger.exception("operation %s: %s hook %s failed", operation.pk, when, path)

    def result(self, stack: Stack, duration_ms: int) -> dict[str, Any]:
        """The runbook's JSON for deploy and delete; a summary for the others."""
        if self.operation.kind == OperationKind.DELETE:
            return {
                "ok": True,
                "deleted": {
                    "stack_name": stack.stack_name,
                    "tenant": stack.tenant.slug,
                    "coolify_service_uuid": stack.coolify_service_uuid,
                    "pocketbase_id": stack.pocketbase_id,
                },
                "duration_ms": duration_ms,
            }
        return {
            "ok": True,
            "project_uuid": stack.coolify_project_uuid,
            "service_uuid": stack.coolify_service_uuid,
            "domains": list(
                stack.domains.filter(released_at__isnull=True).values_list("domain", flat=True)
            ),
            "pocketbase_id": stack.pocketbase_id,
            "duration_ms": duration_ms,
        }


# --- entry points ---------------------------------------------------------------------------


def run_operation(operation_id: int, *, remote: Remote | None = None, **options: Any) -> bool:
    """Claim the operation and run it. False if another worker has it or it is finished.

    Its Coolify calls go in the shared budget as the operation's priority (a background one's
    leave the larger reserve: stacks/clients/pacing.py); once it ends, waiting background
    operations may take its place (stacks.services.dispatch)."""
    if not Operation.objects.claim(operation_id):
        return False
    operation = Operation.objects.select_related("stack__tenant").get(pk=operation_id)
    try:
        with calls_as(BACKGROUND if operation.background else INTERACTIVE):
            OperationRunner(operation, remote or get_remote(), **options).run()
    finally:
        dispatch_background()  # one query when nothing waits
    return True
