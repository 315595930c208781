"""Point a rendered compose at volumes a deleted stack kept (data recovery): each kept volume is
mounted through its data directory on the server, the only way Coolify lets a service reach a
Docker volume it did not name itself."""

# Why not `external: true` or `name:`? Coolify's serviceParser (bootstrap/helpers/parsers.php,
# the `$type->value() === 'volume'` branch) renames EVERY named-volume mount of a service to
# `<service uuid>_<Str::slug(source)>` and writes a top-level `{name: <that>}` for it, whatever
# the top-level declaration says; only `driver_opts.type` cifs/nfs volumes are left alone. A new
# service therefore always gets new, empty volumes. Bind sources are different: sourceIsLocal()
# says `/…` is local, and replaceLocalSource() only rewrites `.`, `~` and `..`, so an absolute
# path such as `/var/lib/docker/volumes/<kept name>/_data` reaches the container unchanged.

from __future__ import annotations

import dataclasses
import re
from typing import Any

import yaml

from stacks.compose.audit import audit_compose
from stacks.compose.errors import RenderError
from stacks.compose.render import RenderedStack
from stacks.compose.strict_yaml import parse_compose
from stacks.compose.strict_yaml import written as _written

# Docker's default data root; a server with another `data-root` sets DOCKER_VOLUMES_ROOT.
DEFAULT_VOLUMES_ROOT = "/var/lib/docker/volumes"
# `<service uuid>_<slug>`: what Coolify names a service's volumes (server_names()).
KEPT_NAME = re.compile(r"[a-z0-9]+_[a-z0-9]+(?:-[a-z0-9]+)*")


def kept_volume_path(name: str, root: str = DEFAULT_VOLUMES_ROOT) -> str:
    """The host directory holding a Docker volume's data."""
    if not KEPT_NAME.fullmatch(name):
        raise RenderError(f"not a Coolify volume name: {name!r}")
    return f"{root.rstrip('/')}/{name}/_data"


def mount_kept_volumes(
    rendered: RenderedStack,
    kept: dict[str, str],
    compose_volumes: dict[str, str],
    *,
    root: str = DEFAULT_VOLUMES_ROOT,
) -> RenderedStack:
    """`rendered` with each volume purpose in `kept` (purpose -> kept server volume name)
    mounted from that volume's data directory instead of a new named volume.

    `compose_volumes` maps purpose -> the volume's name in the rendered compose. Only those
    mounts change; the hardening audit runs again, and the one finding it must make about
    these exact paths (a host path under /var/lib/docker) is the only one allowed.
    """
    if not kept:
        return rendered
    paths = {
        _written(compose_volumes[purpose]): kept_volume_path(name, root)
        for purpose, name in kept.items()
        if purpose in compose_volumes
    }
    if len(paths) != len(kept):
        raise RenderError(f"kept volumes {sorted(kept)} are not all volumes of this template")
    compose: dict[str, Any] = parse_compose(rendered.text)
    for service in (compose.get("services") or {}).values():
        service["volumes"] = [_remount(entry, paths) for entry in service.get("volumes") or []]
    declared = compose.get("volumes") or {}
    for volume in paths:
        declared.pop(volume, None)
    if declared:
        compose["volumes"] = declared
    else:
        compose.pop("volumes", None)
    text = yaml.safe_dump(compose, sort_keys=False, default_flow_style=False, width=1000)
    parsed = parse_compose(text)
    allowed = set(paths.values())
    findings = [
        finding
        for finding in audit_compose(rendered.manifest, parsed, rendered.service_names)
        if not (
            finding.rule in ("no-docker-socket", "no-host-mounts")
            and finding.message.split(" ")[-1] in allowed
        )
    ]
    return dataclasses.replace(rendered, text=text, compose=parsed, findings=findings)


def _remount(entry: Any, paths: dict[str, str]) -> Any:
    if isinstance(entry, str):
        source, sep, rest = entry.partition(":")
        return f"{paths[source]}{sep}{rest}" if source in paths else entry
    if isinstance(entry, dict) and entry.get("source") in paths:
        return {**entry, "type": "bind", "source": paths[entry["source"]]}
    return entry
