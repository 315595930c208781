"""The parts of Coolify's compose parser (`serviceParser`, bootstrap/helpers/parsers.php) that
shape what the API shows: sub-resources, container names, volume names, env vars.

Services use serviceParser because compose_parsing_version is "5" (app/Models/Service.php:48,
1646-1649). Parsing runs on create, on every PATCH and on every start/restart.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import yaml

from stacks.coolify_simulator import naming

# bootstrap/helpers/shared.php:136-161 validateShellSafePath(): forbidden substrings, in order.
DANGEROUS = (
    ("`", "backtick (command substitution)"),
    ("$(", "command substitution"),
    ("${", "variable substitution with potential command injection"),
    ("|", "pipe operator"),
    ("&", "background/AND operator"),
    (";", "command separator"),
    ("\n", "newline (command separator)"),
    ("\r", "carriage return"),
    ("\t", "tab (token separator)"),
    (">", "output redirection"),
    ("<", "input redirection"),
)
VAR_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
ENV_VAR_WITH_DEFAULT = re.compile(r"^\$\{([^}:]+):-([^}]*)\}")
SIMPLE_ENV_SOURCE = re.compile(r"^\$\{[a-zA-Z_][a-zA-Z0-9_]*\}([/\w.\-]*)$")


class ComposeError(Exception):
    """validateDockerComposeForInjection() threw: 422 errors.docker_compose_raw = message."""


class YamlError(Exception):
    """Symfony Yaml::parse threw a ParseException: nothing catches it, so Laravel answers 500."""


@dataclass
class SubResource:
    name: str  # the compose key
    image: str
    is_database: bool
    healthcheck: bool
    excluded: bool  # exclude_from_hc: true or restart: no (CalculatesExcludedStatus:138-142)
    magic_keys: list[tuple[str, str | None]] = field(default_factory=list)
    value_urls: list[str] = field(default_factory=list)  # ${SERVICE_URL_X} in values
    volumes: list[str] = field(default_factory=list)  # the named volumes it mounts
    # Existing Docker volumes it reaches through a bind of their data directory (see
    # docker_volume_of): Coolify leaves absolute bind sources alone, so no rename, no new volume.
    bound_volumes: list[str] = field(default_factory=list)


@dataclass
class ParsedCompose:
    raw: str  # Yaml::dump(Yaml::parse(input)) — what docker_compose_raw holds
    rendered: str  # docker_compose: container names and volume names as Coolify writes them
    subs: dict[str, SubResource]
    volumes: list[str]  # named volumes: <uuid>_<slug(source)>
    variables: dict[str, str | None]  # ${VAR:-default} references → default


def shell_safe(value: str, context: str) -> None:
    for char, description in DANGEROUS:
        if char in value:
            raise ComposeError(
                f"Invalid {context}: contains forbidden character '{char}' ({description}). "
                "Shell metacharacters are not allowed for security reasons."
            )


def load_yaml(text: str) -> Any:
    """Yaml::parse. A UTF-8 BOM is not stripped: it sticks to the first key."""
    try:
        return yaml.load(text, Loader=_BomKeepingLoader)
    except yaml.YAMLError as exc:
        raise YamlError(str(exc)) from exc


class _BomKeepingLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        bom = stream.startswith("\ufeff")
        super().__init__(stream.replace("\ufeff", "\u2060BOM\u2060", 1) if bom else stream)


def check_injection(data: Any) -> None:
    """bootstrap/helpers/parsers.php:27 validateDockerComposeForInjection()."""
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ComposeError('Docker Compose file must contain a "services" section')
    for name, config in data["services"].items():
        try:
            shell_safe(str(name), "service name")
        except ComposeError as exc:
            raise ComposeError(
                f"Invalid Docker Compose service name: {exc} Service names must not contain "
                "shell metacharacters."
            ) from exc
        volumes = (config or {}).get("volumes") if isinstance(config, dict) else None
        for volume in volumes or []:
            source, target = _volume_parts(volume)
            try:
                if source is not None and not _env_source(source):
                    shell_safe(source, "volume source")
                if target is not None:
                    shell_safe(target, "volume target")
            except ComposeError as exc:
                # parseDockerVolumeString / the array-syntax branch (parsers.php:51-95);
                # the message wording of the string branch is approximated.
                syntax = " (array syntax)" if isinstance(volume, dict) else ""
                raise ComposeError(
                    f"Invalid Docker volume definition{syntax}: {exc} Please use safe path "
                    "names without shell metacharacters."
                ) from exc


def _env_source(source: str) -> bool:
    return bool(
        re.fullmatch(r"\$\{[a-zA-Z_][a-zA-Z0-9_]*\}", source)
        or re.fullmatch(r"\$\{[^}]+:-[^}]*\}", source)
        or SIMPLE_ENV_SOURCE.fullmatch(source)
    )


def _volume_parts(volume: Any) -> tuple[str | None, str | None]:
    if isinstance(volume, dict):
        source, target = volume.get("source"), volume.get("target")
        return (
            source if isinstance(source, str) else None,
            target if isinstance(target, str) else None,
        )
    text = str(volume).strip()
    match = ENV_VAR_WITH_DEFAULT.match(text)
    if match:  # ${VAR:-default}:/target — the colon inside the braces does not count
        rest = text[match.end() :]
        return match.group(0), rest[1:].split(":", 1)[0] if rest.startswith(":") else None
    parts = text.split(":")
    if len(parts) == 1:
        return parts[0], parts[0]
    return parts[0], parts[1]


# Docker keeps a local volume's data in <data-root>/volumes/<name>/_data (default data-root
# /var/lib/docker): a bind of that directory is a mount of the volume's data.
DOCKER_VOLUME_DATA = re.compile(r"/var/lib/docker/volumes/([A-Za-z0-9][A-Za-z0-9_.-]*)/_data")


def docker_volume_of(bind_source: str) -> str | None:
    """The Docker volume whose data directory `bind_source` is (None: an ordinary path)."""
    match = DOCKER_VOLUME_DATA.fullmatch(bind_source)
    return match.group(1) if match else None


def _resolve_source(source: str) -> str:
    # parsers.php:287-304: `${V:-db}` → `db`; `${V}` stays as written.
    match = ENV_VAR_WITH_DEFAULT.fullmatch(source)
    return match.group(2) if match else source


def _magic_keys(environment: Any) -> tuple[list[tuple[str, str | None]], list[str]]:
    """SERVICE_URL_*/SERVICE_FQDN_* written as keys (parsers.php:1775), and ${SERVICE_URL_X}
    references in values (:1917)."""
    keys: list[tuple[str, str | None]] = []
    values: list[str] = []
    items: list[tuple[str, Any]] = []
    if isinstance(environment, dict):
        items = [(str(k), v) for k, v in environment.items()]
    elif isinstance(environment, list):
        for entry in environment:
            key, sep, value = str(entry).partition("=")
            items.append((key, value if sep else None))
    for key, value in items:
        key = key.strip()
        if key.startswith(("SERVICE_URL_", "SERVICE_FQDN_")):
            keys.append((key, None if value is None else str(value)))
        for match in VAR_REFERENCE.finditer(str(value or "")):
            if match.group(1).startswith(("SERVICE_URL_", "SERVICE_FQDN_")):
                values.append(match.group(1))
    return keys, values


def parse(text: str, service_uuid: str) -> ParsedCompose:
    """Decode, re-serialise and model the compose. Raises YamlError (→ 500) or ComposeError."""
    data = load_yaml(text)
    if isinstance(data, dict) and any(str(k).startswith("\u2060BOM\u2060") for k in data):
        data = {str(k).replace("\u2060BOM\u2060", "\ufeff"): v for k, v in data.items()}
    # ServicesController: Yaml::dump(Yaml::parse($compose), 10, 2, DUMP_MULTI_LINE_LITERAL_BLOCK)
    raw = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    check_injection(data)
    subs: dict[str, SubResource] = {}
    volumes: list[str] = []
    rendered_services: dict[str, Any] = {}
    top_volumes = {
        k: v for k, v in (data.get("volumes") or {}).items() if v is not None
    }  # parsers.php:1587-1596: bare `data:` entries are dropped
    rendered_volumes: dict[str, Any] = dict(top_volumes)
    for name, config in data["services"].items():
        config = config if isinstance(config, dict) else {}
        image = str(config.get("image") or "")
        labels = config.get("labels") or {}
        exclude_label = (
            labels.get("exclude_from_hc") if isinstance(labels, dict) else None
        ) or config.get("exclude_from_hc")
        magic, value_urls = _magic_keys(config.get("environment"))
        subs[str(name)] = SubResource(
            name=str(name),
            image=image,
            is_database=naming.is_database_image(image),
            healthcheck=isinstance(config.get("healthcheck"), dict)
            and not config["healthcheck"].get("disable"),
            excluded=bool(exclude_label) or str(config.get("restart", "always")) == "no",
            magic_keys=magic,
            value_urls=value_urls,
        )
        mounts = []
        for volume in config.get("volumes") or []:
            source, target = _volume_parts(volume)
            mode = None
            if not isinstance(volume, dict):
                parts = str(volume).split(":")
                mode = (
                    parts[2] if len(parts) > 2 and not ENV_VAR_WITH_DEFAULT.match(volume) else None
                )
            if source is None:
                mounts.append(volume)
                continue
            source = _resolve_source(source)
            if naming.is_bind_source(source):
                # shared.php:1642-1651: bind mounts always come out as the short string.
                bound = naming.bind_source(service_uuid, source)
                existing = docker_volume_of(bound)
                if existing is not None:
                    subs[str(name)].bound_volumes.append(existing)
                mounts.append(":".join(p for p in (bound, target, mode) if p))
                continue
            driver = (
                (top_volumes.get(source) or {}) if isinstance(top_volumes.get(source), dict) else {}
            )
            if str((driver.get("driver_opts") or {}).get("type", "")) in ("cifs", "nfs"):
                mounts.append(volume)  # parsers.php:2244-2251: cifs/nfs volumes are skipped
                continue
            real = naming.volume_name(service_uuid, source)
            if real not in volumes:
                volumes.append(real)
            subs[str(name)].volumes.append(real)
            if isinstance(volume, dict):
                mounts.append({**volume, "source": real})
            else:
                mounts.append(":".join(p for p in (real, target, mode) if p))
            rendered_volumes.pop(source, None)
            rendered_volumes[real] = {"name": real}  # parsers.php:2268
        # parsers.php:2720-2724: container_name is always Coolify's, whatever the compose said.
        rendered_services[str(name)] = {
            **config,
            "container_name": naming.container_name(str(name), service_uuid),
            **({"volumes": mounts} if mounts else {}),
        }
    rendered = {**data, "services": rendered_services}
    if rendered_volumes:
        rendered["volumes"] = rendered_volumes
    variables: dict[str, str | None] = {}
    for match in VAR_REFERENCE.finditer(text):
        variables.setdefault(match.group(1), match.group(3) if match.group(2) else None)
    return ParsedCompose(
        raw=raw,
        rendered=yaml.safe_dump(rendered, sort_keys=False, allow_unicode=True),
        subs=subs,
        volumes=volumes,
        variables=variables,
    )


# Magic generated values (bootstrap/helpers/shared.php generateEnvValue), created once.
_ALNUM = string.ascii_letters + string.digits


def generated_value(key: str) -> str | None:
    """A value for SERVICE_PASSWORD_*, SERVICE_USER_* … references, or None if not magic."""

    def rand(n: int, alphabet: str = _ALNUM) -> str:
        return "".join(secrets.choice(alphabet) for _ in range(n))

    for prefix, make in (
        ("SERVICE_PASSWORD_64_", lambda: rand(64)),
        ("SERVICE_PASSWORDWITHSYMBOLS_64_", lambda: rand(64, _ALNUM + "!@#%^*")),
        ("SERVICE_PASSWORDWITHSYMBOLS_", lambda: rand(32, _ALNUM + "!@#%^*")),
        ("SERVICE_PASSWORD_", lambda: rand(32)),
        ("SERVICE_LOWERCASEUSER_", lambda: rand(16, string.ascii_lowercase)),
        ("SERVICE_USER_", lambda: rand(16, string.ascii_letters)),
        ("SERVICE_BASE64_128_", lambda: rand(128)),
        ("SERVICE_BASE64_64_", lambda: rand(64)),
        ("SERVICE_BASE64_", lambda: rand(32)),
        ("SERVICE_HEX_128_", lambda: secrets.token_hex(64)),
        ("SERVICE_HEX_64_", lambda: secrets.token_hex(32)),
        ("SERVICE_HEX_32_", lambda: secrets.token_hex(16)),
    ):
        if key.startswith(prefix):
            return make()
    return None
