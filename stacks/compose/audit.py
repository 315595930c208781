"""The hardening audit of a parsed compose file: each rule, why it matters, and the findings
for every service and volume (a manifest may justify capabilities, root or a writable root)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stacks.compose.manifest import Manifest, ServiceSpec
from stacks.compose.strict_yaml import written as _written


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
