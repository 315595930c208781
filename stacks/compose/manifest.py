"""Stack template manifests: what each template's services are, their limits, env keys and
allowances, parsed and checked from manifest.yml; its version hashes manifest and compose."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from stacks.catalog import MANIFEST_FILE, TEMPLATES_DIR, template_names
from stacks.compose.errors import TemplateError
from stacks.compose.naming import UUID_PLACEHOLDER, coolify_slug
from stacks.compose.strict_yaml import UniqueKeyLoader

COMPOSE_FILE = "compose.yml.j2"
VERSION_LENGTH = 12


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
    version = release_version(manifest_text, compose_text)
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


def template_files(name: str, templates_dir: Path = TEMPLATES_DIR) -> tuple[str, str]:
    """The on-disk manifest and compose text of a template (what its version hashes)."""
    load_manifest(name, templates_dir)  # refuses an unknown or broken template, by name
    folder = templates_dir / name
    return (folder / MANIFEST_FILE).read_text(), (folder / COMPOSE_FILE).read_text()


def release_version(manifest_text: str, compose_text: str) -> str:
    """The version of a template's files: the hash load_manifest gives them."""
    digest = hashlib.sha256(manifest_text.encode() + b"\0" + compose_text.encode())
    return digest.hexdigest()[:VERSION_LENGTH]


def parse_release(name: str, version: str, manifest_text: str, compose_text: str) -> Manifest:
    """A stored release's manifest, named by the version it was stored under (normally the
    hash of its text; what stacks recorded as their template_version is what counts)."""
    return replace(_parse_manifest(name, manifest_text, compose_text), version=version)


def manifest_for(name: str, version: str | None = None) -> Manifest:
    """The manifest of one version of a template: the files on disk when it is theirs (or
    `version` is empty), else the stored release of that version (TemplateRelease); an
    unknown version is refused by name."""
    current = load_manifest(name)
    if not version or version == current.version:
        return current
    return _stored_manifest(name, version)


@lru_cache(maxsize=64)
def _stored_manifest(name: str, version: str) -> Manifest:
    # A release never changes once stored (its version hashes its text): parse it once.
    from stacks.models.template_release import TemplateRelease  # the models import this module

    release = TemplateRelease.objects.filter(template_name=name, version=version).first()
    if release is None:
        raise TemplateError(
            f"template {name}: version {version} is unknown to cfadmin (no stored release)"
        )
    return parse_release(name, version, release.manifest_text, release.compose_text)


def all_manifests(templates_dir: Path = TEMPLATES_DIR) -> list[Manifest]:
    return [load_manifest(name, templates_dir) for name in template_names(templates_dir)]
