"""The runbook's emergency-stop order for a mass failure: highest resource limits first (its
base-llm web UIs before the rest), read from each template's manifest (the `limits` of its
services in stacks/compose_templates/*/manifest.yaml, stacks.compose.manifest)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from stacks.compose.errors import TemplateError
from stacks.compose.manifest import load_manifest
from stacks.models import Stack

UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
MEMORY = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[bkmgt]?)b?\s*$", re.IGNORECASE)


def memory_bytes(text: object) -> int:
    """A compose memory limit ("8g", "512m", 1024) in bytes; 0 when it cannot be read."""
    match = MEMORY.match(str(text))
    if match is None:
        return 0
    return int(float(match["number"]) * UNITS[match["unit"].lower()])


@lru_cache(maxsize=32)
def template_memory(template_name: str) -> int:
    """The memory a stack of the template may use: the sum of its services' limits."""
    try:
        manifest = load_manifest(template_name)
    except TemplateError:
        return 0
    return sum(memory_bytes(spec.limits.get("memory")) for spec in manifest.services.values())


def stop_order(stacks: Iterable[Stack]) -> list[Stack]:
    """Highest memory limit first, then by template, tenant and stack name (a stable order
    that keeps a template's stacks together)."""
    return sorted(
        stacks,
        key=lambda s: (
            -template_memory(s.template_name),
            s.template_name,
            s.tenant.slug,
            s.stack_name,
        ),
    )


def restart_order(stacks: Iterable[Stack]) -> list[Stack]:
    """The gradual restart brings the lightest stacks back first (the reverse of the stop
    order): the heavy ones return last, once the server has shown it copes."""
    return list(reversed(stop_order(stacks)))


def memory_text(template_name: str) -> str:
    total = template_memory(template_name)
    return f"{total / 1024**3:g} GiB" if total else "unknown"
