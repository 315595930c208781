"""Operations on stacks as resumable steps against Coolify and PocketBase.

Every step first looks on the remote side for its own result, so running an interrupted
operation again resumes it and never makes a second project or service. Each step records an
OperationStep; a transient failure (timeout, reset, 5xx, 429) is retried within the run; a
failure that remains leaves the stack in `error` with the step, the remote's message and what to
do next. Clients come in as arguments (tests pass their own); nothing here knows the admin.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from cfadmin import audit
from cfadmin.models import AuditAction
from stacks.choices import OperationKind, OperationStatus, OutboxAction, StackStatus, StepOutcome
from stacks.clients.coolify import SERVICE_URLS, CoolifyClient, MissingAbility
from stacks.clients.coolify_status import interpret
from stacks.clients.errors import (
    AlreadyInState,
    ClientError,
    Conflict,
    NotFound,
)
from stacks.clients.pocketbase import PocketBaseClient
from stacks.compose import Manifest, RenderedStack, load_manifest, render_stack
from stacks.models import Operation, OperationStep, PocketBaseOutboxEntry, RemoteSnapshot, Stack
from stacks.plan import project_description, service_description, service_urls
from stacks.pocketbase_outbox import Outcome as DeliveryOutcome
from stacks.pocketbase_outbox import (
    deliver_record,
    deliver_soon,
    queue_delete,
    queue_error,
    queue_upsert,
)

logger = logging.getLogger(__name__)

# The one usable server, per Coolify URL: servers change rarely, calls are rationed (200/min).
SERVER_CACHE_SECONDS = 600.0
_server_cache: dict[str, tuple[float, str]] = {}

WORKING_STATUS = {
    OperationKind.DEPLOY: StackStatus.DEPLOYING,
    OperationKind.REDEPLOY: StackStatus.DEPLOYING,
    OperationKind.ROTATE_SECRETS: StackStatus.DEPLOYING,
    OperationKind.RESTART: StackStatus.DEPLOYING,
    OperationKind.START: StackStatus.DEPLOYING,
    OperationKind.DELETE: StackStatus.DELETING,
}


# --- clients --------------------------------------------------------------------------------


@dataclass
class Remote:
    coolify: CoolifyClient
    pocketbase: PocketBaseClient

    def close(self) -> None:
        self.coolify.close()
        self.pocketbase.close()


def get_coolify(**options: Any) -> CoolifyClient:
    """A client for settings' Coolify; `options` (timeout, attempts…) override the defaults."""
    if not settings.COOLIFY_URL:
        raise ClientError("COOLIFY_URL is not set", service="Coolify")
    return CoolifyClient(
        settings.COOLIFY_URL,
        settings.COOLIFY_TOKEN,
        **{"timeout": settings.COOLIFY_TIMEOUT, **options},
    )


def get_pocketbase(**options: Any) -> PocketBaseClient:
    """A client for settings' PocketBase; `options` override the defaults."""
    if not settings.POCKETBASE_URL:
        raise ClientError("POCKETBASE_URL is not set", service="PocketBase")
    return PocketBaseClient(
        settings.POCKETBASE_URL,
        email=settings.POCKETBASE_EMAIL,
        password=settings.POCKETBASE_PASSWORD,
        token=settings.POCKETBASE_TOKEN,
        **{"timeout": settings.POCKETBASE_TIMEOUT, **options},
    )


_process_remote: dict[tuple[str, ...], Remote] = {}


def get_remote() -> Remote:
    """The clients of this worker process, kept between operations: connections stay open and
    PocketBase's login is reused (a login per operation costs more than the operation's calls).
    """
    key = (
        settings.COOLIFY_URL,
        settings.COOLIFY_TOKEN,
        settings.POCKETBASE_URL,
        settings.POCKETBASE_EMAIL,
        settings.POCKETBASE_TOKEN,
    )
    remote = _process_remote.get(key)
    if remote is None:
        remote = _process_remote[key] = Remote(coolify=get_coolify(), pocketbase=get_pocketbase())
    return remote


# --- shared status polling ------------------------------------------------------------------


@dataclass(frozen=True)
class StatusRead:
    """Every Coolify service's status, and when the read that produced it began."""

    statuses: dict[str, str]
    began_at: datetime


def service_statuses(coolify: CoolifyClient, *, max_age: float) -> StatusRead:
    """Every Coolify service's status, read at most once per `max_age` across all workers.

    `began_at` is when the winning worker claimed the round, before it called Coolify: a read
    that began after a request can show that request's effect; one that began before cannot.
    """
    name = f"coolify-services:{coolify.base_url}"
    now = timezone.now()
    snapshot = RemoteSnapshot.objects.filter(name=name).first()
    if snapshot is not None and (now - snapshot.fetched_at).total_seconds() < max_age:
        return StatusRead(snapshot.data, snapshot.fetched_at)
    if snapshot is None:
        RemoteSnapshot.objects.get_or_create(
            name=name, defaults={"data": {}, "fetched_at": now - timedelta(days=1)}
        )
        snapshot = RemoteSnapshot.objects.get(name=name)
    # Claim this round: only the worker whose conditional UPDATE wins calls Coolify.
    claimed = RemoteSnapshot.objects.filter(name=name, fetched_at=snapshot.fetched_at).update(
        fetched_at=now
    )
    if not claimed:
        fresh = RemoteSnapshot.objects.get(name=name)
        return StatusRead(fresh.data, fresh.fetched_at)
    try:
        statuses = {s["uuid"]: str(s.get("status", "")) for s in coolify.list_services()}
    except ClientError:
        # No answer is not a fresh snapshot: give the round back, so the next poll asks again.
        RemoteSnapshot.objects.filter(name=name, fetched_at=now).update(
            fetched_at=snapshot.fetched_at
        )
        raise
    RemoteSnapshot.objects.filter(name=name, fetched_at=now).update(data=statuses)
    return StatusRead(statuses, now)


# --- PocketBase records ----------------------------------------------------------------------


def settle_stack(stack: Stack, status: str, *, detail: str) -> PocketBaseOutboxEntry:
    """Move the stack to `status` and queue its PocketBase record, in one transaction: a
    change cfadmin made is never without the record change that tells the platform."""
    with transaction.atomic():
        if stack.status != status:
            stack.transition_to(status, detail=detail)
        if status == StackStatus.DELETED:
            return queue_delete(stack)
        return queue_upsert(stack, status)


# --- steps ----------------------------------------------------------------------------------


class StepFailed(Exception):
    def __init__(self, step: str, reason: str, hint: str) -> None:
        super().__init__(f"step {step!r} failed: {reason}")
        self.step = step
        self.reason = reason
        self.hint = hint


class Outcome(NamedTuple):
    """What a step returns: its outcome and a short detail for the operation page."""

    outcome: StepOutcome
    detail: str = ""


def done(detail: str = "") -> Outcome:
    return Outcome(StepOutcome.DONE, detail)


def already(detail: str) -> Outcome:
    return Outcome(StepOutcome.ALREADY_DONE, detail)


def skipped(detail: str) -> Outcome:
    return Outcome(StepOutcome.SKIPPED, detail)


def deferred(detail: str) -> Outcome:
    return Outcome(StepOutcome.DEFERRED, detail)


def hint_for(step: str, error: Exception) -> str:
    """What an operator should do next, in one sentence."""
    if isinstance(error, MissingAbility):
        return (
            f"Give the Coolify API token the '{error.ability}' ability (or root) in "
            "Coolify → Keys & Tokens, then retry the operation."
        )
    if isinstance(error, ClientError) and error.status == 401:
        return f"Check the {error.service} credentials in cfadmin's settings, then retry."
    if isinstance(error, ClientError) and error.status == 403:
        return (
            f"{error.service} refused access (API disabled, IP allow-list or missing "
            "permission); fix that, then retry."
        )
    if isinstance(error, Conflict):
        return "Another Coolify resource uses this domain: free it or change the stack's domain."
    if isinstance(error, ClientError) and error.transient:
        return (
            f"{error.service} did not answer properly; check it is up, then retry — the "
            "retry resumes where this attempt stopped."
        )
    if step == "render":
        return "Fix the template or the stack's inputs (run `manage.py audit_templates`)."
    if step in ("wait_healthy", "wait_stopped"):
        return (
            "Check the service's logs in Coolify (runbook: Stack Not Responding), then "
            "retry or redeploy."
        )
    if step == "confirm_deleted":
        return (
            "Coolify has not finished deleting the service: check it in Coolify, then "
            "retry the delete."
        )
    return "Read the error above, fix the cause, then retry the operation."


@dataclass
class OperationRunner:
    operation: Operation
    remote: Remote
    poll_interval: float = field(default_factory=lambda: settings.PROVISION_POLL_INTERVAL)
    health_timeout: float = field(default_factory=lambda: settings.PROVISION_HEALTH_TIMEOUT)
    delete_timeout: float = field(default_factory=lambda: settings.PROVISION_DELETE_TIMEOUT)
    step_attempts: int = field(default_factory=lambda: settings.PROVISION_STEP_ATTEMPTS)
    sleep: Callable[[float], None] = time.sleep
    rendered: RenderedStack | None = None
    # When this run asked Coolify to start or restart the service. Coolify only queues the job
    # and reports the old status until it runs (app/Http/Controllers/Api/ServicesController.php
    # action_deploy/action_restart → StartService/RestartService::dispatch), so wait_healthy
    # wants proof it ran.
    start_requested_at: datetime | None = None
    restart_requested_at: datetime | None = None

    @property
    def stack(self) -> Stack:
        return self.operation.stack

    @property
    def coolify(self) -> CoolifyClient:
        return self.remote.coolify

    @property
    def pocketbase(self) -> PocketBaseClient:
        return self.remote.pocketbase

    # --- running ----------------------------------------------------------------------------

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
        self._enter_working_status()
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

    def _beat(self, **fields: Any) -> None:
        """Record liveness (and `fields`). A bare beat while polling is written at most once
        per tenth of PROVISION_STALE_AFTER: fast polls need not turn into a write each."""
        now = timezone.now()
        last = self.operation.heartbeat_at
        quiet = settings.PROVISION_STALE_AFTER / 10
        if not fields and last is not None and (now - last).total_seconds() < quiet:
            return
        fields["heartbeat_at"] = now
        Operation.objects.filter(pk=self.operation.pk).update(**fields)
        for key, value in fields.items():
            setattr(self.operation, key, value)

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

    def _succeed(self, started: float) -> None:
        stack = Stack.objects.get(pk=self.stack.pk)
        kind = self.operation.kind
        final = {
            OperationKind.DELETE: StackStatus.DELETED,
            OperationKind.STOP: StackStatus.STOPPED,
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
        self._run_success_hooks()

    def _run_success_hooks(self) -> None:
        """Configured follow-ups (settings.OPERATION_SUCCESS_HOOKS), e.g. the validation
        checklist. A failing hook is logged; it never turns a done operation into a failure."""
        operation = Operation.objects.select_related("stack__tenant").get(pk=self.operation.pk)
        for path in settings.OPERATION_SUCCESS_HOOKS:
            try:
                import_string(path)(operation)
            except Exception:
                logger.exception("operation %s: success hook %s failed", operation.pk, path)

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

    def _save_stack(self, **fields: Any) -> None:
        Stack.objects.filter(pk=self.stack.pk).update(**fields, updated_at=timezone.now())
        for key, value in fields.items():
            setattr(self.stack, key, value)

    # --- deploy steps -----------------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        return load_manifest(self.stack.template_name)

    def render(self) -> Outcome:
        stack = self.stack
        manifest = self.manifest
        missing = set(manifest.required_env) - set(stack.secrets.values_list("key", flat=True))
        if missing:
            raise StepFailed(
                "render",
                f"required env keys not set: {', '.join(sorted(missing))}",
                "Add the missing secrets on the stack page, then retry.",
            )
        rendered = render_stack(
            manifest,
            tenant=stack.tenant.slug,
            stack_name=stack.stack_name,
            env_keys=list(stack.secrets.values_list("key", flat=True)),
        )
        if rendered.findings:
            raise StepFailed(
                "render",
                "; ".join(str(f) for f in rendered.findings),
                hint_for("render", Exception()),
            )
        self.rendered = rendered
        self._save_stack(template_version=manifest.version)
        return done(f"{manifest.name} {manifest.version}, all hardening rules hold")

    def ensure_project(self) -> Outcome:
        return self._resolve_project(trust_records=True)

    def _resolve_project(self, *, trust_records: bool) -> Outcome:
        """Find or create the stack's Coolify project (its tenant's stacks share it)."""
        stack = self.stack
        if trust_records and stack.coolify_project_uuid:
            return already(f"project {stack.coolify_project_uuid} (recorded on the stack)")
        sibling = (
            Stack.objects.filter(tenant_id=stack.tenant_id, project_name=stack.project_name)
            .exclude(coolify_project_uuid="")
            .exclude(pk=stack.pk)
            .values_list("coolify_project_uuid", flat=True)
            .first()
        )
        if trust_records and sibling:
            self._save_stack(coolify_project_uuid=sibling)
            return already(f"project {sibling}, shared with the tenant's other stacks")
        existing = self.coolify.find_project(stack.project_name)
        if existing is not None:
            self._save_stack(coolify_project_uuid=existing["uuid"])
            return already(f"found project {stack.project_name} ({existing['uuid']})")
        created = self.coolify.create_project(
            stack.project_name, project_description(stack.tenant.slug)
        )
        uuid = self._settle_duplicate_projects(created)
        self._save_stack(coolify_project_uuid=uuid)
        if uuid != created:
            return already(f"another worker created project {stack.project_name} first ({uuid})")
        return done(f"created project {stack.project_name} ({uuid})")

    def _settle_duplicate_projects(self, created: str) -> str:
        """Two first deploys of a tenant may both create its project (Coolify allows one name
        twice). Look after creating: everyone keeps the oldest; ours goes if it lost."""
        same_name = [
            p for p in self.coolify.list_projects() if p.get("name") == self.stack.project_name
        ]
        if len(same_name) <= 1:
            return created
        keep = min(same_name, key=lambda p: p.get("id", 0))["uuid"]
        if keep != created:
            try:
                self.coolify.delete_project(created)
            except ClientError as error:  # it has resources already: leave it, log it
                logger.warning("duplicate project %s not removed: %s", created, error)
        return keep

    def _server_uuid(self) -> str:
        if settings.COOLIFY_SERVER_UUID:
            return settings.COOLIFY_SERVER_UUID
        cached = _server_cache.get(self.coolify.base_url)
        if cached and time.monotonic() - cached[0] < SERVER_CACHE_SECONDS:
            return cached[1]
        usable = [
            s
            for s in self.coolify.list_servers()
            if (s.get("settings") or {}).get("is_usable", True)
            and not (s.get("settings") or {}).get("is_build_server", False)
        ]
        if len(usable) != 1:
            raise StepFailed(
                "create_service",
                f"Coolify has {len(usable)} usable servers; cfadmin cannot choose",
                "Set COOLIFY_SERVER_UUID to the server stacks should run on.",
            )
        uuid = str(usable[0]["uuid"])
        _server_cache[self.coolify.base_url] = (time.monotonic(), uuid)
        return uuid

    def _find_service_by_name(self) -> dict[str, Any] | None:
        project = self.coolify.get_project(self.stack.coolify_project_uuid)
        environment_ids = {e.get("id") for e in project.get("environments", [])}
        return next(
            (
                s
                for s in self.coolify.list_services()
                if s.get("name") == self.stack.stack_name
                and s.get("environment_id") in environment_ids
            ),
            None,
        )

    def _domains(self) -> list[tuple[str, str]]:
        return list(
            self.stack.domains.filter(released_at__isnull=True).values_list("service", "domain")
        )

    def _urls(self) -> list[dict[str, str]]:
        return service_urls(
            self.manifest, self.stack.tenant.slug, self.stack.stack_name, self._domains()
        )

    def create_service(self) -> Outcome:
        stack = self.stack
        if stack.coolify_service_uuid:
            if self.coolify.service_exists(stack.coolify_service_uuid):
                return already(f"service {stack.coolify_service_uuid} exists")
            self._save_stack(coolify_service_uuid="")
        if stack.service_create_requested_at is not None:
            found = self._find_service_by_name()
            if found is not None:
                self._save_stack(coolify_service_uuid=found["uuid"])
                return already(f"adopted service {found['uuid']} from an interrupted attempt")
        self.coolify.require_version(SERVICE_URLS, "service domains (`urls`)")
        self._save_stack(service_create_requested_at=timezone.now())
        try:
            created = self._post_service()
        except NotFound as error:
            if "Project" not in error.message:
                raise
            # The recorded project was deleted in Coolify: look it up (or make it) afresh.
            self._resolve_project(trust_records=False)
            created = self._post_service()
        self._save_stack(coolify_service_uuid=created["uuid"])
        return done(f"created service {created['uuid']}")

    def _post_service(self) -> dict[str, Any]:
        assert self.rendered is not None
        stack = self.stack
        return self.coolify.create_service(
            project_uuid=stack.coolify_project_uuid,
            server_uuid=self._server_uuid(),
            environment_name=settings.COOLIFY_ENVIRONMENT,
            name=stack.stack_name,
            description=service_description(stack.tenant.slug, stack.stack_name, self.manifest),
            compose=self.rendered.text,
            urls=self._urls(),
        )

    def update_service(self) -> Outcome:
        assert self.rendered is not None
        uuid = self._require_service("update_service")
        self.coolify.update_service(uuid, compose=self.rendered.text, urls=self._urls())
        return done(f"pushed compose {self.manifest.version} and domains to {uuid}")

    def _require_service(self, step: str) -> str:
        uuid = self.stack.coolify_service_uuid
        if not uuid:
            raise StepFailed(
                step,
                "the stack has no Coolify service",
                "Deploy the stack first (its service was never created).",
            )
        return uuid

    def set_env(self) -> Outcome:
        uuid = self._require_service("set_env")
        values = {secret.key: secret.reveal() for secret in self.stack.secrets.all()}
        if not values:
            return skipped("no env values to set")
        self.coolify.upsert_service_envs(uuid, values)
        return done(f"set {', '.join(sorted(values))}")  # keys only, never values

    def start(self) -> Outcome:
        uuid = self._require_service("start")
        requested_at = timezone.now()
        try:
            self.coolify.start_service(uuid)
        except AlreadyInState:
            return already("service already running")
        self.start_requested_at = requested_at
        return done("start requested")

    def restart(self) -> Outcome:
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
            try:
                read = service_statuses(self.coolify, max_age=self.poll_interval)
                status = read.statuses.get(uuid)
                answered = True
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
            self.sleep(self.poll_interval)

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

    def _settle(self, step: str, status: str) -> Outcome:
        """The stack takes its final status and its record is queued, together; then the
        record goes to PocketBase now, or — when PocketBase does not answer — later, from the
        outbox: the stack's status follows Coolify, not PocketBase's availability."""
        stack = Stack.objects.select_related("tenant").get(pk=self.stack.pk)
        entry = settle_stack(stack, status, detail=f"{self.operation} succeeded")
        self.operation.stack = stack
        self._beat()
        delivery = deliver_record(entry.tenant_slug, entry.stack_name, self.pocketbase)
        if delivery.outcome == DeliveryOutcome.DELIVERED:
            if delivery.action == OutboxAction.UPSERT:
                stack.pocketbase_id = delivery.record_id
            return done(delivery.detail) if delivery.changed else already(delivery.detail)
        if delivery.outcome == DeliveryOutcome.NOTHING:  # a drain delivered it just now
            return already("record delivered by the PocketBase outbox")
        if delivery.outcome == DeliveryOutcome.BUSY:
            return deferred("record queued for PocketBase (another worker is delivering it)")
        assert delivery.error is not None
        if delivery.outcome == DeliveryOutcome.DEFERRED and delivery.error.transient:
            return deferred(
                f"record queued for PocketBase, which did not answer ({delivery.error}); "
                "it is retried in the background"
            )
        if delivery.outcome == DeliveryOutcome.REJECTED:
            raise StepFailed(
                step,
                f"PocketBase refused the record: {delivery.error}",
                "Fix what PocketBase names (the agent_stacks collection's fields, e.g. with "
                "`manage.py pocketbase_setup`), then retry the operation.",
            )
        # Credentials or permissions: the record stays queued; an operator must act.
        raise StepFailed(step, str(delivery.error), hint_for(step, delivery.error))

    def sync_pocketbase_running(self) -> Outcome:
        return self._settle("sync_pocketbase", StackStatus.RUNNING)

    def sync_pocketbase_stopped(self) -> Outcome:
        return self._settle("sync_pocketbase", StackStatus.STOPPED)

    # --- stop and delete --------------------------------------------------------------------

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
            self.coolify.delete_service(uuid, delete_volumes=True)
        except NotFound:
            return already("service already gone")
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
                    self.coolify.delete_service(uuid, delete_volumes=True)
                except NotFound:
                    return done("service gone from Coolify")
            self._beat()
            self.sleep(min(self.poll_interval, 2.0))

    def delete_pocketbase_record(self) -> Outcome:
        """The stack becomes a tombstone and its record's deletion is queued, together."""
        return self._settle("delete_pocketbase_record", StackStatus.DELETED)


# --- entry points ---------------------------------------------------------------------------


def run_operation(operation_id: int, *, remote: Remote | None = None, **options: Any) -> bool:
    """Claim the operation and run it. False if another worker has it or it is finished."""
    if not Operation.objects.claim(operation_id):
        return False
    operation = Operation.objects.select_related("stack__tenant").get(pk=operation_id)
    OperationRunner(operation, remote or get_remote(), **options).run()
    return True
