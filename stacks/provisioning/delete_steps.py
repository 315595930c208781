"""Delete a stack's Coolify service (with its volumes, or keeping them for data recovery) and
confirm it is gone."""

from __future__ import annotations

import time

from stacks.clients.errors import ClientError, NotFound
from stacks.models import Stack
from stacks.models.kept_volumes import KeptVolumes, stack_volumes
from stacks.provisioning.base import RunnerBase
from stacks.provisioning.outcomes import Outcome, StepFailed, already, done, hint_for, skipped


class DeleteSteps(RunnerBase):
    """delete_service, confirm_deleted."""

    @property
    def keep_volumes(self) -> bool:
        """The delete was asked to leave the named volumes on the server (data recovery)."""
        return bool((self.operation.parameters or {}).get("keep_volumes"))

    def _delete_remote(self, uuid: str) -> None:
        # DELETE /services/{uuid}?delete_volumes=false (ServicesController::delete_by_uuid →
        # DeleteResourceJob → app/Actions/Service/DeleteService.php): the containers, env rows
        # and sub-resources go; `docker volume rm` runs only when delete_volumes is true.
        if self.keep_volumes:
            record_kept_volumes(self.stack, uuid)
        self.coolify.delete_service(uuid, delete_volumes=not self.keep_volumes)

    def delete_service(self) -> Outcome:
        uuid = self.stack.coolify_service_uuid
        if not uuid:
            if self.stack.service_create_requested_at is None or not (
                self.stack.coolify_project_uuid and (found := self._find_service_by_name())
            ):
                return skipped("no Coolify service")
            self._save_stack(coolify_service_uuid=found["uuid"])
            uuid = found["uuid"]
        try:
            self._delete_remote(uuid)
        except NotFound:
            return already("service already gone")
        if self.keep_volumes:
            kept = ", ".join(stack_volumes(self.stack))
            return done(f"deletion of {uuid} queued, volumes kept: {kept}")
        return done(f"deletion of {uuid} queued (with volumes)")

    def confirm_deleted(self) -> Outcome:
        uuid = self.stack.coolify_service_uuid
        if not uuid:
            return skipped("no Coolify service")
        deadline = time.monotonic() + self.delete_timeout
        asked_again = False
        while True:
            try:
                if not self.coolify.service_exists(uuid):
                    return done("service gone from Coolify")
            except ClientError as error:
                if not error.transient:
                    raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StepFailed(
                    "confirm_deleted",
                    f"service {uuid} still exists after {int(self.delete_timeout)}s",
                    hint_for("confirm_deleted", Exception()),
                )
            if not asked_again and remaining < self.delete_timeout / 2:
                # Coolify's delete job sometimes stops half-way: ask once more.
                asked_again = True
                try:
                    self._delete_remote(uuid)
                except NotFound:
                    return done("service gone from Coolify")
            self._beat()
            self.sleep(min(self.poll_interval, 2.0))


def record_kept_volumes(stack: Stack, service_uuid: str) -> KeptVolumes:
    """The KeptVolumes row of this delete (one per stack and service: a retry finds it)."""
    kept, _ = KeptVolumes.objects.get_or_create(
        stack=stack,
        service_uuid=service_uuid,
        defaults={"volumes": stack_volumes(stack)},
    )
    return kept
