"""The containment steps (issue 15): mark a stack isolated, take its domains off in Coolify,
put exactly its stored domains back, clear the mark. Each looks before it acts (resumable)."""

from __future__ import annotations

import shlex
from typing import Any

from django.utils import timezone

from stacks.choices import Containment
from stacks.compose import (
    Manifest,
    TemplateError,
    compose_service_names,
    load_manifest,
    manifest_for,
)
from stacks.plan import service_urls
from stacks.provisioning.base import RunnerBase
from stacks.provisioning.outcomes import Outcome, already, done, skipped


def network_disconnect_commands(stack: Any) -> list[str]:
    """What cuts the stack off the network on its server, which Coolify's API cannot do (it has
    no network disconnect). Coolify puts a service's containers on a network named by the
    service uuid (bootstrap/helpers/parsers.php serviceParser: `$baseNetwork =
    collect([$uuid])`) and connects its proxy to it (app/Actions/Service/StartService.php:
    `docker network connect $service->uuid coolify-proxy`)."""
    uuid = stack.coolify_service_uuid
    if not uuid:
        return []
    names = stack.server_names()
    return [
        # Quoted: the names come from Coolify and a person pastes these into a root shell.
        f"docker network disconnect {shlex.quote(uuid)} coolify-proxy",
        *(
            f"docker network disconnect {shlex.quote(uuid)} {shlex.quote(container)}"
            for container in names.containers
        ),
    ]


class ContainmentSteps(RunnerBase):
    """mark_isolated, remove_domains, restore_domains, clear_containment."""

    @property
    def deployed_manifest(self) -> Manifest:
        """The template version the stack runs (a rollout may have left it on an older or a
        newer one than the files on disk); the files on disk when that version is not stored
        (a stack deployed before cfadmin kept its releases)."""
        stack = self.stack
        try:
            return manifest_for(stack.template_name, stack.template_version)
        except TemplateError:
            return load_manifest(stack.template_name)

    def _exposed_names(self) -> list[str]:
        """The compose service keys of the stack's exposed services (Coolify's application
        names, as `urls` names them)."""
        stack = self.stack
        manifest = self.deployed_manifest
        names = compose_service_names(manifest, stack.tenant.slug, stack.stack_name)
        return [names[service] for service in manifest.exposed]

    def _fqdns(self, uuid: str) -> dict[str, str]:
        service = self.coolify.get_service(uuid)
        return {
            str(app.get("name")): str(app.get("fqdn") or "")
            for app in service.get("applications") or []
        }

    def mark_isolated(self) -> Outcome:
        """First of all: from here on the stack refuses start, restart, redeploy and rotate,
        and reconcile leaves it alone, even if a later step fails."""
        if self.stack.is_isolated:
            return already("already marked isolated")
        self._save_stack(containment=Containment.ISOLATED, contained_at=timezone.now())
        return done("marked isolated")

    def remove_domains(self) -> Outcome:
        """Empty urls: Coolify sets each application's fqdn to null. Traefik's routes are the
        containers' labels, made from the fqdn when the service starts, so a stopped service
        without an fqdn gets no route even if someone starts it in Coolify's UI."""
        uuid = self.stack.coolify_service_uuid
        if not uuid:
            return skipped("no Coolify service")
        names = self._exposed_names()
        current = self._fqdns(uuid)
        if not any(current.get(name) for name in names):
            return already("no domain in Coolify")
        self.coolify.set_service_urls(uuid, [{"name": name, "url": ""} for name in names])
        kept = self.stack.domains.filter(released_at__isnull=True).count()
        return done(f"domains taken off in Coolify; cfadmin keeps the stack's {kept} to restore")

    def restore_domains(self) -> Outcome:
        """Exactly the stack's stored domains (StackDomain rows, never released by isolation),
        as a deploy sends them."""
        uuid = self._require_service("restore_domains")
        stack = self.stack
        domains = list(
            stack.domains.filter(released_at__isnull=True).values_list("service", "domain")
        )
        urls = service_urls(self.deployed_manifest, stack.tenant.slug, stack.stack_name, domains)
        self.coolify.set_service_urls(uuid, urls)
        shown = ", ".join(domain for _, domain in domains) or "none"
        return done(f"domains restored: {shown}")

    def clear_containment(self) -> Outcome:
        if not self.stack.is_isolated:
            return already("not marked isolated")
        self._save_stack(containment=Containment.NONE, contained_at=None)
        return done("isolation cleared")
