"""Start, restart and stop a service, and wait until Coolify's status shows the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from stacks.clients.coolify_status import interpret
from stacks.clients.errors import AlreadyInState, ClientError, NotFound
from stacks.provisioning.base import RunnerBase
from stacks.provisioning.outcomes import Outcome, StepFailed, already, done, hint_for, skipped
from stacks.remote import service_statuses


class LifecycleSteps(RunnerBase):
    """start, restart, wait_healthy, wait_stopped, stop."""

    def _refuse_if_contained(self, step: str) -> None:
        """The worker's own check of the containment rule (stacks.choices.containment_refusal):
        an isolated stack is started only by its release."""
        refusal = self.stack.containment_refusal(self.operation.kind)
        if refusal:
            raise StepFailed(step, refusal, "Release the stack first (its page or the incident).")

    def start(self) -> Outcome:
        self._refuse_if_contained("start")
        uuid = self._require_service("start")
        requested_at = timezone.now()
        try:
            self.coolify.start_service(uuid)
        except AlreadyInState:
            return already("service already running")
        self.start_requested_at = requested_at
        return done("start requested")

    def restart(self) -> Outcome:
        self._refuse_if_contained("restart")
        requested_at = timezone.now()
        self.coolify.restart_service(self._require_service("restart"))
        self.restart_requested_at = requested_at
        return done("restart requested")

    def _wait_for(
        self, step: str, accept: Callable[[str, datetime], bool], timeout: float
    ) -> Outcome:
        """Poll the shared status read until `accept(status, read_began_at)` says yes."""
        uuid = self._require_service(step)
        deadline = time.monotonic() + timeout
        last = "unknown"
        answered = False
        last_error: ClientError | None = None
        while True:
            pause = self.poll_interval
            try:
                read = service_statuses(self.coolify, max_age=self.poll_interval)
                status = read.statuses.get(uuid)
                answered = True
                pause = self._until(read.next_at)
            except ClientError as error:
                if not error.transient:
                    raise
                status, last_error = None, error  # a failed poll is not an answer: wait on
            if status:
                last = status
                if accept(status, read.began_at):
                    return done(f"status {status}")
            if time.monotonic() >= deadline:
                if not answered and last_error is not None:  # Coolify, not the service
                    raise StepFailed(step, str(last_error), hint_for(step, last_error))
                raise StepFailed(step, self._still(last, timeout), hint_for(step, Exception()))
            self._beat()
            self.sleep(pause)

    def _until(self, next_at: datetime | None) -> float:
        """Seconds until the shared read has something newer: polls wake with its rounds (one
        round late would add up to a whole interval to every wait)."""
        if next_at is None:
            return self.poll_interval
        seconds = (next_at - timezone.now()).total_seconds()
        return min(self.poll_interval, max(seconds, self.poll_interval / 4))

    def _still(self, last: str, timeout: float) -> str:
        if self.restart_requested_at is not None and interpret(last).running:
            return (
                f"Coolify still reports '{last}' after {int(timeout)}s and never showed the "
                "service going down: no sign that the restart it queued has run"
            )
        return f"service still '{last}' after {int(timeout)}s"

    def wait_healthy(self) -> Outcome:
        """Running and healthy, in a status read that began after this run's request — and,
        after a restart, only once such a read showed the service not running.

        Why: Coolify accepts a start only when its status does not contain `running`
        (ServicesController.php action_deploy answers 400 "Service is already running."), so
        after an accepted start any running status read later comes from a start. A restart
        (latest=false) is StartService with stopBeforeStart, whose StopService sets every
        application to `exited` before `docker compose up` (app/Actions/Service/
        StartService.php, StopService.php); the status then reads `starting:unhealthy` while
        the job's activity runs (Service::isStarting) and `exited` again until the next
        container-status check stores `running:*` (GetContainersStatus / PushServerUpdateJob,
        about a minute): a running status after a non-running one, both read after the
        request, comes from a restart. It can be an earlier start or restart of the same
        operation whose answer was lost; that one carried the same compose and env.
        """
        since = self.restart_requested_at or self.start_requested_at
        went_down = self.restart_requested_at is None

        def accept(raw: str, read_began_at: datetime) -> bool:
            nonlocal went_down
            status = interpret(raw)
            if since is not None and read_began_at < since:
                return False  # read before the request: it cannot show its effect
            if not went_down:
                went_down = not status.running
                return False
            return status.up

        outcome = self._wait_for("wait_healthy", accept, self.health_timeout)
        self.start_requested_at = self.restart_requested_at = None
        return outcome

    def wait_stopped(self) -> Outcome:
        return self._wait_for(
            "wait_stopped", lambda raw, _read_at: interpret(raw).stopped, self.health_timeout
        )

    def stop(self) -> Outcome:
        uuid = self.stack.coolify_service_uuid
        if not uuid:
            return skipped("no Coolify service")
        try:
            self.coolify.stop_service(uuid)
        except AlreadyInState:
            return already("service already stopped")
        except NotFound:
            return already("service already gone")
        return done("stop requested")
