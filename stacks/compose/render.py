"""Rendering a stack's compose file: Jinja2's sandbox with StrictUndefined, every value a
JSON-quoted YAML scalar, the result checked against the manifest and audited."""

# The sandbox alone does not stop YAML injection (PITFALLS.md): every `{{ }}` value is written
# as a quoted scalar, so no value can add keys however it is spelled, and check_structure proves
# the shape on every render. Secrets never reach a template: containers get `${KEY}` and Coolify
# supplies the value.

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from stacks.compose.audit import Finding, audit_compose
from stacks.compose.errors import RenderError
from stacks.compose.manifest import Manifest
from stacks.compose.naming import compose_service_names, stack_labels, volume_name
from stacks.compose.strict_yaml import parse_compose
from stacks.compose.strict_yaml import written as _written


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
