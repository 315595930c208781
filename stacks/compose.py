"""Stack templates: manifests, safe rendering and the hardening audit.

Rendering runs Jinja2's sandbox with StrictUndefined, and every `{{ }}` value is written as a
JSON-quoted YAML scalar, so no value can add keys, however it is spelled (the sandbox alone
does not stop YAML injection: PITFALLS.md). The parsed result is then checked against what the
manifest says it must be, and audited against the hardening rules. Secrets never reach a
template: containers get `${KEY}` and Coolify supplies the value.

Names on the server. Coolify (4.3.x, bootstrap/helpers/parsers.php) replaces any
`container_name` with `<compose service key>-<service uuid>` and renames each named volume to
`<service uuid>_<Str::slug(volume)>`. So the compose service KEY is what a person finds with
`docker ps`: cfadmin writes `<container_prefix>-<tenant>-<stack>` (cf-agent-acme-bot1), and the
container is `cf-agent-acme-bot1-<uuid>`. The manifest's keys (`bot`, `llm`, `webui`) stay
cfadmin's internal ids (domains, env, `manifest.exposed`); `compose_service_names()` maps one to
the other and `server_names()` says what the server really has.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from stacks.catalog import MANIFEST_FILE, TEMPLATES_DIR, template_names

COMPOSE_FILE = "compose.yml.j2"
VERSION_LENGTH = 12
LABEL_PREFIX = "cf."
# A compose service key is a host name on the stack's network: one DNS label (RFC 1035 2.3.4).
DNS_LABEL_MAX = 63
# What server_names() shows before Coolify has given the stack a service uuid.
UUID_PLACEHOLDER = "<service uuid>"


class TemplateError(Exception):
    """A template or manifest that cannot be used; the message names the template and why."""


class RenderError(TemplateError):
    """Rendering produced something other than what the manifest describes."""


# --- Manifests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str
    container_prefix: str
    limits: dict[str, Any]
    env: tuple[str, ...]
    volumes: dict[str, str]  # purpose -> mount path in the container
    port: int | None = None
    user: str | None = None
    read_only: bool = False
    cap_add: dict[str, str] = field(default_factory=dict)  # capability -> why it is needed
    root_required: str = ""  # why the image must run as root ("" = it must not)
    writable_root: str = ""  # why the root file system cannot be read-only


@dataclass(frozen=True)
class Manifest:
    name: str
    description: str
    version: str
    services: dict[str, ServiceSpec]
    required_env: tuple[str, ...]
    optional_env: tuple[str, ...]
    compose_source: str

    @property
    def exposed(self) -> dict[str, int]:
        """Domain keys an operator may pass (`--domain webui=…`): service -> container port."""
        return {name: s.port for name, s in self.services.items() if s.port is not None}

    @property
    def env_keys(self) -> tuple[str, ...]:
        return self.required_env + self.optional_env

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "exposed": self.exposed,
            "required_env": list(self.required_env),
            "optional_env": list(self.optional_env),
            "services": {
                name: {
                    "image": s.image,
                    # As on the server: Coolify appends the service uuid to the compose key.
                    "compose_service": f"{s.container_prefix}-<tenant>-<stack>",
                    "container": f"{s.container_prefix}-<tenant>-<stack>-{UUID_PLACEHOLDER}",
                    "port": s.port,
                    "limits": s.limits,
                    "env": list(s.env),
                    "volumes": {
                        p: f"{UUID_PLACEHOLDER}_cf-agent-<tenant>-<stack>-{p}" for p in s.volumes
                    },
                    "user": s.user or f"root ({s.root_required})",
                    "read_only": s.read_only,
                }
                for name, s in self.services.items()
            },
        }


def _require(data: dict, key: str, kind: type, where: str) -> Any:
    if key not in data or not isinstance(data[key], kind):
        raise TemplateError(f"{where}: '{key}' must be a {kind.__name__}")
    return data[key]


def _parse_service(name: str, data: Any, template: str) -> ServiceSpec:
    where = f"template {template}, service {name}"
    if not isinstance(data, dict):
        raise TemplateError(f"{where}: must be a mapping")
    limits = _require(data, "limits", dict, where)
    for limit in ("memory", "cpus", "pids"):
        if limit not in limits:
            raise TemplateError(f"{where}: limits.{limit} is required")
    user = data.get("user")
    if user is None and not data.get("root_required"):
        raise TemplateError(f"{where}: set 'user', or 'root_required' with the reason")
    return ServiceSpec(
        name=name,
        image=_require(data, "image", str, where),
        container_prefix=_require(data, "container_prefix", str, where),
        limits=dict(limits),
        env=tuple(data.get("env") or ()),
        volumes=dict(data.get("volumes") or {}),
        port=data.get("port"),
        user=user,
        read_only=bool(data.get("read_only", False)),
        cap_add=dict(data.get("cap_add") or {}),
        root_required=data.get("root_required", ""),
        writable_root=data.get("writable_root", ""),
    )


def _parse_manifest(name: str, manifest_text: str, compose_text: str) -> Manifest:
    try:
        data = yaml.load(manifest_text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise TemplateError(f"template {name}: manifest is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or data.get("name") != name:
        raise TemplateError(f"template {name}: manifest 'name' must be {name!r}")
    services = _require(data, "services", dict, f"template {name}")
    env = data.get("env") or {}
    version = hashlib.sha256(manifest_text.encode() + b"\0" + compose_text.encode()).hexdigest()[
        :VERSION_LENGTH
    ]
    parsed_services = {key: _parse_service(key, value, name) for key, value in services.items()}
    prefixes: dict[str, str] = {}
    for key, spec in parsed_services.items():
        # The prefix starts the compose service key, which Coolify's logs endpoint only finds
        # when slugging leaves it unchanged; two services with one prefix would get one key.
        if not spec.container_prefix or coolify_slug(spec.container_prefix) != (
            spec.container_prefix
        ):
            raise TemplateError(
                f"template {name}, service {key}: container_prefix {spec.container_prefix!r} "
                "must be lowercase letters, digits and single hyphens"
            )
        if spec.container_prefix in prefixes:
            raise TemplateError(
                f"template {name}: services {prefixes[spec.container_prefix]} and {key} share "
                f"container_prefix {spec.container_prefix!r}; each service needs its own"
            )
        prefixes[spec.container_prefix] = key
    env_keys = [
        *(env.get("required") or ()),
        *(env.get("optional") or ()),
        *(key for spec in parsed_services.values() for key in spec.env),
    ]
    for key in env_keys:
        if not isinstance(key, str) or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            raise TemplateError(
                f"template {name}: env key {key!r} is not an environment variable name"
            )
    return Manifest(
        name=name,
        description=" ".join(str(data.get("description", "")).split()),
        version=version,
        services=parsed_services,
        required_env=tuple(env.get("required") or ()),
        optional_env=tuple(env.get("optional") or ()),
        compose_source=compose_text,
    )


@lru_cache(maxsize=32)
def load_manifest(name: str, templates_dir: Path = TEMPLATES_DIR) -> Manifest:
    """A template's manifest; its version is a hash of the manifest and compose files.

    Read once per process: a changed template file is a new release of cfadmin.
    """
    folder = templates_dir / name
    if name not in template_names(templates_dir):
        raise TemplateError(
            f"unknown template {name!r}; choose one of {template_names(templates_dir)}"
        )
    try:
        manifest_text = (folder / MANIFEST_FILE).read_text()
        compose_text = (folder / COMPOSE_FILE).read_text()
    except FileNotFoundError as exc:
        raise TemplateError(f"template {name}: missing {Path(exc.filename).name}") from exc
    return _parse_manifest(name, manifest_text, compose_text)


def all_manifests(templates_dir: Path = TEMPLATES_DIR) -> list[Manifest]:
    return [load_manifest(name, templates_dir) for name in template_names(templates_dir)]


# --- YAML ------------------------------------------------------------------------------------


class UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses duplicate keys (plain safe_load silently keeps the last one)."""


def _construct_unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def parse_compose(text: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise RenderError(f"rendered compose is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise RenderError("rendered compose has no 'services' mapping")
    return data


# --- Rendering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvReference:
    """`KEY=${KEY}`: the one place a template may emit a `$` that compose interpolates."""

    key: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", self.key):
            raise RenderError(f"not an environment variable name: {self.key!r}")

    def __str__(self) -> str:
        return f"{self.key}=${{{self.key}}}"


def _yaml_scalar(value: Any) -> str:
    """Jinja `finalize`: every expression becomes one quoted YAML scalar, never raw text."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises UndefinedError, naming the variable
    if isinstance(value, EnvReference):
        return json.dumps(str(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        # JSON escapes quotes, backslashes, newlines and control characters (a JSON string is
        # a valid YAML double-quoted scalar); `$$` keeps compose from interpolating the value.
        return json.dumps(value.replace("$", "$$"))
    raise RenderError(f"only strings and numbers can be rendered, not {type(value).__name__}")


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    # No loader: a template cannot include or extend other files.
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        finalize=_yaml_scalar,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@lru_cache(maxsize=32)
def _compiled(source: str) -> Template:
    return _environment().from_string(source)


# --- Names: compose keys, and what the server really has -------------------------------------

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


@dataclass(frozen=True)
class RenderedStack:
    manifest: Manifest
    text: str
    compose: dict[str, Any]  # keyed by compose service keys (service_names' values)
    findings: list[Finding]
    service_names: dict[str, str] = field(default_factory=dict)  # manifest key -> compose key


def render_stack(
    manifest: Manifest,
    *,
    tenant: str,
    stack_name: str,
    env_keys: list[str] | tuple[str, ...] = (),
) -> RenderedStack:
    """Render, parse, check the structure and audit. Only names reach the template, no values.

    `tenant` and `stack_name` should be validated slugs; even unvalidated ones cannot change
    the structure (they are quoted), and the structural check proves it on every render.
    `env_keys` are the keys the stack will receive; each service gets those it declares.
    """
    provided = set(env_keys)
    service_names = compose_service_names(manifest, tenant, stack_name)
    context = {
        "tenant": tenant,
        "stack": stack_name,
        # Compose service keys, and the host names services use for one another.
        "service_names": service_names,
        "services": {
            name: {
                "image": spec.image,
                "user": spec.user,
                "port": spec.port,
                "limits": spec.limits,
            }
            for name, spec in manifest.services.items()
        },
        "volumes": {
            purpose: volume_name(tenant, stack_name, purpose)
            for spec in manifest.services.values()
            for purpose in spec.volumes
        },
        "env_entries": {
            name: [EnvReference(key) for key in spec.env if key in provided]
            for name, spec in manifest.services.items()
        },
        "labels": stack_labels(manifest, tenant, stack_name),
    }
    try:
        text = _compiled(manifest.compose_source).render(context)
    except Exception as exc:  # a template bug: name the template, keep the cause
        raise RenderError(f"template {manifest.name} failed to render: {exc}") from exc
    compose = parse_compose(text)
    check_structure(manifest, compose, context)
    return RenderedStack(
        manifest=manifest,
        text=text,
        compose=compose,
        findings=audit_compose(manifest, compose, service_names),
        service_names=service_names,
    )


def _written(value: str) -> str:
    """A string as _yaml_scalar writes it, so as the parsed compose holds it."""
    return value.replace("$", "$$")


def check_structure(manifest: Manifest, compose: dict[str, Any], context: dict[str, Any]) -> None:
    """The rendered file is exactly the shape the manifest promises; anything else is refused."""
    problems = []
    labels = {_written(k): _written(v) for k, v in context["labels"].items()}
    keys = {name: _written(key) for name, key in context["service_names"].items()}
    extra_top = set(compose) - {"services", "volumes"}
    if extra_top:
        problems.append(f"unexpected top-level keys {sorted(extra_top)}")
    services = compose.get("services") or {}
    if set(services) != set(keys.values()):
        problems.append(f"services {sorted(services)} != manifest {sorted(keys.values())}")
    for name, spec in manifest.services.items():
        service = services.get(keys[name])
        if not isinstance(service, dict):
            continue
        if service.get("image") != spec.image:
            problems.append(f"{name}: image {service.get('image')!r} != {spec.image!r}")
        # Coolify replaces container_name with `<key>-<uuid>`: one in the file would mislead.
        if "container_name" in service:
            problems.append(
                f"{name}: container_name {service['container_name']!r} is set; Coolify "
                "replaces it, so the template must not"
            )
        if service.get("labels") != labels:
            problems.append(f"{name}: labels differ from the stack's labels")
    declared_volumes = set((compose.get("volumes") or {}).keys())
    if declared_volumes != {_written(v) for v in context["volumes"].values()}:
        problems.append(f"volumes {sorted(declared_volumes)} differ from the manifest's")
    if problems:
        raise RenderError(
            f"template {manifest.name}: rendered compose is not as expected: " + "; ".join(problems)
        )


# --- Hardening audit -------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    template: str
    service: str
    rule: str
    message: str
    why: str

    def __str__(self) -> str:
        return f"{self.template}/{self.service}: [{self.rule}] {self.message} — {self.why}"

    def as_dict(self) -> dict[str, str]:
        return {
            "template": self.template,
            "service": self.service,
            "rule": self.rule,
            "message": self.message,
            "why": self.why,
        }


RULES: dict[str, str] = {
    "no-privileged": "a privileged container is root on the host",
    "cap-drop-all": "dropping every capability removes the kernel powers an attacker would use",
    "cap-add-justified": "each added capability widens the attack surface; the manifest says why",
    "no-new-privileges": "stops setuid binaries from regaining privileges inside the container",
    "memory-limit": "one stack must not exhaust the shared server's RAM",
    "cpu-limit": "one stack must not starve the other tenants' CPU",
    "pids-limit": "a fork bomb must stay inside its container",
    "healthcheck": "Coolify and cfadmin read health to know a deploy worked",
    "restart-policy": "a crashed container must come back without an operator",
    "no-docker-socket": "access to the container engine is root on the host and every tenant",
    "no-host-mounts": "host paths leak host data and survive the stack; use named volumes",
    "no-host-namespaces": "sharing the host's (or another container's) network, PID, IPC, UTS "
    "or user namespace breaks isolation",
    "no-unconfined": "seccomp and AppArmor profiles block the system calls escapes rely on",
    "own-volumes": "an external, renamed or host-backed volume can reach another tenant's data",
    "no-host-ports": "published ports bypass the proxy, TLS and the domain routing",
    "no-devices": "host devices give direct hardware access",
    "non-root-user": "a root process that escapes the container is root on the host",
    "read-only-root": "a read-only root file system stops an attacker persisting changes",
    "pinned-image": "an unpinned image changes under a running fleet without review",
}

_DOCKER_SOCKETS = (
    "docker.sock",
    "/var/run/docker",
    "/run/docker",
    "containerd.sock",
    "podman.sock",
    "/run/containerd",
    "/var/lib/docker",
)
_HOST_NAMESPACE_KEYS = ("network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup")
_ROOT_UIDS = {"root", "0"}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _volume_source(entry: Any) -> tuple[str, str]:
    """(source, type) for short ("src:dst[:mode]") or long ({type, source, target}) syntax."""
    if isinstance(entry, dict):
        return str(entry.get("source", "")), str(entry.get("type", "volume"))
    text = str(entry)
    source = text.split(":", 1)[0] if ":" in text else ""
    kind = "bind" if source.startswith(("/", ".", "~", "$")) else "volume"
    return source, kind


def _limits(service: dict[str, Any]) -> dict[str, Any]:
    deploy = service.get("deploy") or {}
    return ((deploy.get("resources") or {}).get("limits")) or {}


def _image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return False
    tag = name.rsplit(":", 1)[1]
    return bool(tag) and tag != "latest" and not tag.startswith("$")


def audit_service(manifest: Manifest, name: str, service: dict[str, Any]) -> list[Finding]:
    """Audit one service; `name` is the manifest's service key (an unknown one: no allowances)."""
    return _audit_service(manifest, manifest.services.get(name), name, service)


def _audit_service(
    manifest: Manifest, spec: ServiceSpec | None, name: str, service: dict[str, Any]
) -> list[Finding]:
    found: list[Finding] = []

    def flag(rule: str, message: str) -> None:
        found.append(Finding(manifest.name, name, rule, message, RULES[rule]))

    if service.get("privileged"):
        flag("no-privileged", "privileged: true")
    if "ALL" not in [str(c).upper() for c in _as_list(service.get("cap_drop"))]:
        flag("cap-drop-all", "cap_drop must include ALL")
    justified = set(spec.cap_add) if spec else set()
    for cap in _as_list(service.get("cap_add")):
        if str(cap).upper().removeprefix("CAP_") not in justified:
            flag("cap-add-justified", f"cap_add {cap} is not justified in the manifest")
    security_opt = [str(o).replace("=", ":") for o in _as_list(service.get("security_opt"))]
    if "no-new-privileges:true" not in security_opt:
        flag("no-new-privileges", "security_opt must include no-new-privileges:true")
    limits = _limits(service)
    if not (limits.get("memory") or service.get("mem_limit")):
        flag("memory-limit", "no memory limit (deploy.resources.limits.memory)")
    if not (limits.get("cpus") or service.get("cpus")):
        flag("cpu-limit", "no CPU limit (deploy.resources.limits.cpus)")
    pids = service.get("pids_limit") or limits.get("pids")
    if not isinstance(pids, int) or pids <= 0:
        flag("pids-limit", "no positive pids_limit")
    healthcheck = service.get("healthcheck")
    if (
        not isinstance(healthcheck, dict)
        or healthcheck.get("disable")
        or not healthcheck.get("test")
    ):
        flag("healthcheck", "no healthcheck test")
    elif _as_list(healthcheck.get("test"))[:1] == ["NONE"]:
        flag("healthcheck", "healthcheck test is NONE")
    if service.get("restart") not in ("always", "unless-stopped", "on-failure") and not (
        isinstance(service.get("restart"), str) and service["restart"].startswith("on-failure:")
    ):
        flag("restart-policy", f"restart is {service.get('restart')!r}")
    if service.get("use_api_socket"):
        flag("no-docker-socket", "use_api_socket gives the container the engine's API")
    for entry in _as_list(service.get("volumes")):
        source, kind = _volume_source(entry)
        if any(sock in source for sock in _DOCKER_SOCKETS):
            flag("no-docker-socket", f"mounts {source}")
        elif kind == "bind":
            flag("no-host-mounts", f"bind-mounts host path {source or entry!r}")
    for key in _HOST_NAMESPACE_KEYS:
        mode = str(service.get(key, "")).lower()
        if mode == "host" or mode.startswith("container:"):
            flag("no-host-namespaces", f"{key}: {mode}")
    for option in security_opt:
        if option.endswith(":unconfined"):
            flag("no-unconfined", f"security_opt {option}")
    if service.get("ports"):
        flag("no-host-ports", "publishes ports on the host")
    if service.get("devices"):
        flag("no-devices", "maps host devices")
    user = str(service.get("user", "")).strip()
    uid = user.split(":", 1)[0].strip()
    root_required = spec.root_required if spec else ""
    runs_as_root = not uid or uid in _ROOT_UIDS or (uid.lstrip("+").isdigit() and int(uid) == 0)
    if runs_as_root and not root_required:
        flag("non-root-user", f"runs as {user or 'the image default (root)'}")
    writable_root = spec.writable_root if spec else ""
    if service.get("read_only") is not True and not writable_root:
        flag("read-only-root", "read_only is not true")
    image = str(service.get("image", ""))
    if not _image_is_pinned(image):
        flag("pinned-image", f"image {image!r} is not pinned to a version tag or digest")
    return found


def _volume_problem(declaration: Any) -> str:
    """Why a top-level volume declaration is not a plain volume of this stack ("" if it is)."""
    if declaration in (None, {}):
        return ""
    if not isinstance(declaration, dict):
        return f"declared as {declaration!r}"
    if declaration.get("external"):
        return "is external (made outside this stack)"
    if declaration.get("name"):
        return f"is renamed to {declaration['name']!r}"
    options = declaration.get("driver_opts") or {}
    if options.get("device") or "bind" in str(options.get("o", "")):
        return f"is backed by host path {options.get('device', '?')!r}"
    if declaration.get("driver") not in (None, "local"):
        return f"uses volume driver {declaration['driver']!r}"
    return ""


def audit_compose(
    manifest: Manifest, compose: dict[str, Any], service_names: dict[str, str] | None = None
) -> list[Finding]:
    """Audit every service and volume of a parsed compose file.

    `service_names` maps the manifest's service keys to the compose keys (RenderedStack's
    `service_names`); without it the compose is taken to be keyed by the manifest's keys. A
    compose service it does not name gets no allowances from the manifest. Findings name the
    manifest's key, as the template's author knows the service.
    """
    findings: list[Finding] = []
    services = compose.get("services") or {}
    if service_names is None:
        by_key = {key: key for key in manifest.services}
    else:
        by_key = {_written(name): key for key, name in service_names.items()}

    def manifest_key(compose_key: str) -> str:
        return by_key.get(compose_key, compose_key)

    for compose_key, service in services.items():
        key = by_key.get(compose_key)
        spec = manifest.services.get(key) if key is not None else None
        findings.extend(
            _audit_service(
                manifest,
                spec,
                manifest_key(compose_key),
                service if isinstance(service, dict) else {},
            )
        )
    for volume, declaration in (compose.get("volumes") or {}).items():
        problem = _volume_problem(declaration)
        if not problem:
            continue
        users = [
            manifest_key(name)
            for name, service in services.items()
            if isinstance(service, dict)
            and any(
                _volume_source(entry)[0] == volume for entry in _as_list(service.get("volumes"))
            )
        ]
        for name in users or ["(none)"]:
            findings.append(
                Finding(
                    manifest.name,
                    name,
                    "own-volumes",
                    f"volume {volume} {problem}",
                    RULES["own-volumes"],
                )
            )
    return findings


SAMPLE_TENANT = "customer-123"
SAMPLE_STACK = "customer-123-main"


def render_sample(
    manifest: Manifest,
    *,
    tenant: str = SAMPLE_TENANT,
    stack_name: str = SAMPLE_STACK,
) -> RenderedStack:
    """The template rendered for sample names (the runbook's), with every env key provided."""
    return render_stack(manifest, tenant=tenant, stack_name=stack_name, env_keys=manifest.env_keys)
