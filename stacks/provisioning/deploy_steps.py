"""The deploy steps: render the template, find or create the project and the service, push the
compose and domains, set the env values."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from stacks.clients.coolify import SERVICE_URLS, format_version
from stacks.clients.errors import ClientError, NotFound
from stacks.compose import (
    Manifest,
    RenderedStack,
    TemplateError,
    load_manifest,
    manifest_for,
    render_stack,
    volume_name,
)
from stacks.compose.kept_mounts import mount_kept_volumes
from stacks.models import Stack
from stacks.models.kept_volumes import KeptVolumes
from stacks.models.template_release import TemplateRelease, record_release
from stacks.plan import project_description, service_description, service_urls
from stacks.provisioning.base import RunnerBase
from stacks.provisioning.outcomes import Outcome, StepFailed, already, done, hint_for, skipped
from stacks.remote.shared_facts import recall, remember

logger = logging.getLogger(__name__)

# The one usable server and the version check, per Coolify URL, shared by every worker
# (stacks/remote/shared_facts.py): they change rarely, calls are rationed (200/min).
SERVER_CACHE_SECONDS = 600.0
VERSION_CACHE_SECONDS = 600.0
_server_cache: dict[str, tuple[float, str]] = {}  # in front of the shared row: no query each


def kept_version(stack: Stack) -> str:
    """The version a plain deploy or redeploy renders: the one on disk ("" here), unless a
    rollout holds it (TemplateRelease.held_by) and the stack runs another stored version, which
    it then keeps — only the rollout moves stacks to its version, wave by wave."""
    current = load_manifest(stack.template_name).version
    if not stack.template_version or stack.template_version == current:
        return ""
    releases = TemplateRelease.objects.filter(template_name=stack.template_name)
    if not releases.filter(version=current).exclude(held_by="").exists():
        return ""
    return (
        stack.template_version if releases.filter(version=stack.template_version).exists() else ""
    )


class DeploySteps(RunnerBase):
    """render, ensure_project, create_service, update_service, set_env."""

    @property
    def manifest(self) -> Manifest:
        """The version the operation names (`parameters["template_version"]`: a rollout's
        target, a rollback's previous version), else the one on disk now."""
        version = (self.operation.parameters or {}).get("template_version") or ""
        if not version:
            version = kept_version(self.stack)
        try:
            return manifest_for(self.stack.template_name, version)
        except TemplateError as error:
            raise StepFailed(
                "render",
                str(error),
                "Deploy a version cfadmin has stored (its template releases), or the current one.",
            ) from error

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
        rendered = self._onto_kept_volumes(rendered)
        if rendered.findings:
            raise StepFailed(
                "render",
                "; ".join(str(f) for f in rendered.findings),
                hint_for("render", Exception()),
            )
        self.rendered = rendered
        if manifest.version == load_manifest(stack.template_name).version:
            record_release(stack.template_name)  # kept, so a later rollback can come back to it
        self._save_stack(template_version=manifest.version)
        return done(f"{manifest.name} {manifest.version}, all hardening rules hold")

    def _onto_kept_volumes(self, rendered: RenderedStack) -> RenderedStack:
        """A redeploy onto a deleted stack's kept volumes mounts them (stacks/compose/
        kept_mounts.py says why through their data directories); any other deploy is as is."""
        kept_id = (self.operation.parameters or {}).get("kept_volumes_id")
        if not kept_id:
            return rendered
        kept = KeptVolumes.objects.select_related("stack__tenant").filter(pk=kept_id).first()
        if kept is None or kept.reused_by_id != self.stack.pk:
            raise StepFailed(
                "render",
                f"the kept volumes {kept_id} are not reserved for this stack",
                "Start the redeploy again from the deleted stack's page.",
            )
        stack = self.stack
        compose_volumes = {
            purpose: volume_name(stack.tenant.slug, stack.stack_name, purpose)
            for spec in rendered.manifest.services.values()
            for purpose in spec.volumes
        }
        root = settings.DOCKER_VOLUMES_ROOT
        return mount_kept_volumes(rendered, kept.by_purpose(), compose_volumes, root=root)

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
        fact = f"coolify-server:{self.coolify.base_url}"
        shared = recall(fact, max_age=SERVER_CACHE_SECONDS)
        if shared:
            _server_cache[self.coolify.base_url] = (time.monotonic(), str(shared))
            return str(shared)
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
        remember(fact, uuid)
        _server_cache[self.coolify.base_url] = (time.monotonic(), uuid)
        return uuid

    def _require_service_urls(self) -> None:
        """Refuse a Coolify too old for `urls` before creating anything; a version that passed
        is remembered for every worker, so a deploy does not spend a call re-reading it."""
        fact = f"coolify-version-ok:{self.coolify.base_url}:{format_version(SERVICE_URLS)}"
        if recall(fact, max_age=VERSION_CACHE_SECONDS):
            return
        self.coolify.require_version(SERVICE_URLS, "service domains (`urls`)")
        remember(fact, True)

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
        self._require_service_urls()
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

    def set_env(self) -> Outcome:
        uuid = self._require_service("set_env")
        values = {secret.key: secret.reveal() for secret in self.stack.secrets.all()}
        if not values:
            return skipped("no env values to set")
        digest = self.stack.env_digest(values)
        if self.operation.may_skip_unchanged_env and self.stack.pushed_env_digest == digest:
            return skipped("env values unchanged since last pushed")
        self.coolify.upsert_service_envs(uuid, values)
        self._save_stack(pushed_env_digest=digest)
        return done(f"set {', '.join(sorted(values))}")  # keys only, never values
