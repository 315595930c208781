"""Names of a stack: compose service keys, labels and volumes cfadmin writes, and the container
and volume names Coolify makes of them on the server (`server_names`)."""

# Coolify (4.3.x, bootstrap/helpers/parsers.php) replaces any `container_name` with
# `<compose service key>-<service uuid>` and renames each named volume to
# `<service uuid>_<Str::slug(volume)>`. So the compose service KEY is what a person finds with
# `docker ps`: cfadmin writes `<container_prefix>-<tenant>-<stack>` (cf-agent-acme-bot1), and the
# container is `cf-agent-acme-bot1-<uuid>`. The manifest's keys (`bot`, `llm`, `webui`) stay
# cfadmin's internal ids (domains, env, `manifest.exposed`); `compose_service_names()` maps one to
# the other and `server_names()` says what the server really has.

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stacks.compose.errors import TemplateError

if TYPE_CHECKING:
    from stacks.compose.manifest import Manifest, ServiceSpec

LABEL_PREFIX = "cf."
# A compose service key is a host name on the stack's network: one DNS label (RFC 1035 2.3.4).
DNS_LABEL_MAX = 63
# What server_names() shows before Coolify has given the stack a service uuid.
UUID_PLACEHOLDER = "<service uuid>"

_SLUG_WHITESPACE = " \t\n\r\f\v"  # PCRE's \s for ASCII


def coolify_slug(value: str) -> str:
    """Laravel's `Str::slug($value, '-')` (Illuminate/Support/Str.php), as Coolify applies it
    to volume names and to the compose service name its logs endpoint looks for.

    In order: runs of `_` become `-`; `@` becomes `-at-`; the text is lowercased and every
    character that is not `-`, a letter, a digit or white space is dropped; runs of `-` and
    white space become one `-`; `-` is trimmed from both ends. Faithful for ASCII. Laravel
    first transliterates other characters (`Str::ascii`: ü → u); here they are simply dropped,
    which cannot matter for cfadmin's names (validated ASCII slugs).
    """
    text = re.sub(r"_+", "-", value)
    text = text.replace("@", "-at-")
    allowed = f"-a-z0-9{re.escape(_SLUG_WHITESPACE)}"
    text = re.sub(f"[^{allowed}]+", "", text.lower())
    text = re.sub(f"[-{re.escape(_SLUG_WHITESPACE)}]+", "-", text)
    return text.strip("-")


def _spec(manifest: Manifest, service_key: str) -> ServiceSpec:
    try:
        return manifest.services[service_key]
    except KeyError:
        raise TemplateError(
            f"template {manifest.name} has no service {service_key!r}; "
            f"it has {sorted(manifest.services)}"
        ) from None


def compose_service_name(manifest: Manifest, service_key: str, tenant: str, stack_name: str) -> str:
    """The compose service key of a manifest service: `<container_prefix>-<tenant>-<stack>`.

    Coolify names the container `<this>-<service uuid>` whatever `container_name` says, so
    `docker ps | grep cf-agent-<tenant>-<stack>` finds the stack. It cannot contain `_` (Coolify
    would slug it and then not find the container's logs), so tenant "a" + stack "b-c" reads
    like tenant "a-b" + stack "c": the `cf.tenant`/`cf.stack` labels and the uuid tell them apart.
    """
    return f"{_spec(manifest, service_key).container_prefix}-{tenant}-{stack_name}"


def compose_service_names(manifest: Manifest, tenant: str, stack_name: str) -> dict[str, str]:
    """Manifest service key (cfadmin's id: `bot`, `llm`, `webui`) -> compose service key."""
    return {
        key: compose_service_name(manifest, key, tenant, stack_name) for key in manifest.services
    }


def service_key_for(
    manifest: Manifest, tenant: str, stack_name: str, compose_name: str
) -> str | None:
    """The manifest service key whose compose service key is `compose_name` (None: no such)."""
    for key, name in compose_service_names(manifest, tenant, stack_name).items():
        if name == compose_name:
            return key
    return None


def compose_name_problem(manifest: Manifest, tenant: str, stack_name: str) -> str | None:
    """Why this tenant and stack name cannot name this template's compose services (None: ok).

    A compose service key is a host name on the stack's network (base-llm's web UI reaches
    Ollama as http://<key>:11434), so it is one DNS label: at most 63 characters. And Coolify
    finds a container's logs by the slugged key, so slugging must leave it unchanged. The
    message is written for the stack_name field of the deploy form.
    """
    names = compose_service_names(manifest, tenant, stack_name)
    key, longest = max(names.items(), key=lambda item: len(item[1]))
    if len(longest) > DNS_LABEL_MAX:
        prefix = manifest.services[key].container_prefix
        room = DNS_LABEL_MAX - len(f"{prefix}-{tenant}-")
        advice = (
            f"use a stack name of at most {room} characters"
            if room >= 1
            else f"tenant {tenant!r} is too long for this template"
        )
        return (
            f"Too long for template {manifest.name}: its {key} service would be named "
            f"{longest} ({len(longest)} characters), and a compose service name is a DNS label "
            f"of at most {DNS_LABEL_MAX} characters; {advice}."
        )
    for key, name in names.items():
        if coolify_slug(name) != name:
            return (
                f"Template {manifest.name}'s {key} service would be named {name!r}: use only "
                "lowercase letters, digits and single hyphens, or Coolify cannot find its "
                "container."
            )
    return None


def volume_name(tenant: str, stack_name: str, purpose: str) -> str:
    # The volume's name in the compose file; on the server Coolify slugs it (server_names).
    # `_` cannot occur in a slug, so tenant "a" + stack "b-c" never meets tenant "a-b" + "c".
    return f"cf-agent-{tenant}_{stack_name}-{purpose}"


@dataclass(frozen=True)
class ServerNames:
    """What `docker ps` and `docker volume ls` show for a stack on its server."""

    containers: list[str]
    volumes: list[str]


def server_names(
    manifest: Manifest, tenant: str, stack_name: str, service_uuid: str
) -> ServerNames:
    """The stack's container and volume names as Coolify makes them (parsers.php): containers
    `<compose service key>-<uuid>`, volumes `<uuid>_<Str::slug(volume name)>`. Without a uuid
    (not created in Coolify yet) the placeholder `<service uuid>` stands in for it.
    """
    uuid = service_uuid or UUID_PLACEHOLDER
    return ServerNames(
        containers=[
            f"{name}-{uuid}"
            for name in compose_service_names(manifest, tenant, stack_name).values()
        ],
        volumes=[
            f"{uuid}_{coolify_slug(volume_name(tenant, stack_name, purpose))}"
            for spec in manifest.services.values()
            for purpose in spec.volumes
        ],
    )


def stack_labels(manifest: Manifest, tenant: str, stack_name: str) -> dict[str, str]:
    return {
        f"{LABEL_PREFIX}tenant": tenant,
        f"{LABEL_PREFIX}stack": stack_name,
        f"{LABEL_PREFIX}template": manifest.name,
        f"{LABEL_PREFIX}template-version": manifest.version,
    }
