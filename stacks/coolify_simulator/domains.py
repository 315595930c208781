"""Service domains: ServicesController::applyServiceUrls (SC:117-199) with
ValidationPatterns' domain helpers (app/Support/ValidationPatterns.php:540-672) and
checkIfDomainIsAlreadyUsedViaAPI (bootstrap/helpers/domains.php:206-321); and the key-form
SERVICE_URL_*/SERVICE_FQDN_* handling of the parser (bootstrap/helpers/parsers.php:1775-1914).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

# APPLICATION_DOMAIN_FORBIDDEN_PATTERN = '/[`$;&|<>()\\\\\r\n]/' (ValidationPatterns.php:115)
FORBIDDEN = re.compile(r"[`$;&|<>()\\\r\n]")
HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?)+|\[[0-9A-Fa-f:.]+\]")
CONFLICT_MESSAGE = "Domain conflicts detected. Use force_domain_override=true to proceed."
CONFLICT_WARNING = (
    "Using the same domain for multiple resources can cause routing conflicts and "
    "unpredictable behavior."
)


def domain_list(value: str | None) -> list[str]:
    # ValidationPatterns::applicationDomainList: strip one leading/trailing comma, split, trim.
    if value is None or value.strip() == "":
        return []
    if value.startswith(","):
        value = value[1:]
    if value.endswith(","):
        value = value[:-1]
    return [u.strip() for u in value.strip().split(",") if u.strip()]


def _valid_url(url: str) -> bool:
    """isValidDomainUrl: FILTER_VALIDATE_URL plus an http(s) scheme and a host. Every failure
    reads "Invalid URL: …" (so `a.com` and `ftp://…` never reach the scheme message)."""
    if any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    del port
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return False
    host = parts.hostname or ""
    return bool(host) and HOST.fullmatch(host if ":" not in host else f"[{host}]") is not None


def validate_application_domains(urls: Iterable[str]) -> list[str]:
    """ValidationPatterns::validateApplicationDomains (:540-578)."""
    errors = []
    for url in urls:
        if FORBIDDEN.search(url) or not _valid_url(url):
            errors.append(f"Invalid URL: {url}")
    return errors


def normalize_url(url: str) -> str:
    """ValidationPatterns::normalizeApplicationDomainUrl: lowercase scheme and host; keep
    user, port, path, query and fragment as written."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    out = f"{parts.scheme.lower()}://" if parts.scheme else ""
    if parts.username is not None:
        out += parts.username + (f":{parts.password}" if parts.password is not None else "") + "@"
    out += (parts.hostname or "").lower()
    if port is not None:
        out += f":{port}"
    out += parts.path
    if "?" in url:
        out += f"?{parts.query}"
    if "#" in url:
        out += f"#{parts.fragment}"
    return out


def normalize_domains(value: str | None) -> str | None:
    # ValidationPatterns::normalizeApplicationDomains: null when empty, else joined with ','.
    urls = domain_list(value)
    return ",".join(normalize_url(u) for u in urls) if urls else None


def _strip_slash(domain: str) -> str:
    return domain[: domain.rfind("/")] if domain.endswith("/") else domain


def find_conflicts(
    domains: list[str], other_apps: Iterable[tuple[dict[str, Any], dict[str, Any]]]
) -> list[dict[str, Any]]:
    """checkIfDomainIsAlreadyUsedViaAPI: the team's service applications other than this one
    (the simulator has no Applications and no instance fqdn). Exact string compare after one
    trailing `/` goes, so scheme and port count; `resource_uuid` is the *application's* uuid."""
    wanted = {_strip_slash(d) for d in domains}
    conflicts = []
    for service, app in other_apps:
        for domain in (app.get("fqdn") or "").split(","):
            if domain == "":
                continue
            naked = _strip_slash(domain)
            if naked in wanted:
                conflicts.append(
                    {
                        "domain": naked,
                        "resource_name": service["name"],
                        "resource_uuid": app["uuid"],
                        "resource_type": "service",
                        "message": f"Domain {naked} is already in use by service "
                        f"'{service['name']}'",
                    }
                )
    return conflicts


def apply_service_urls(
    applications: list[dict[str, Any]],
    items: list[Any],
    other_apps: Callable[[str], Iterable[tuple[dict[str, Any], dict[str, Any]]]],
    force: bool,
    on_save: Callable[[dict[str, Any]], None],
) -> dict[str, Any] | None:
    """ServicesController::applyServiceUrls (SC:117-199). Returns None, {"errors": [...]}
    (→ 422) or {"conflicts": [...], "warning": ...} (→ 409). Saves happen item by item, so a
    later error leaves earlier items saved."""
    collected: list[str] = []
    for item in items:
        url = item.get("url") if isinstance(item, dict) else None
        if url is None or str(url).strip() == "":
            continue
        collected.extend(domain_list(str(url)))
    errors = validate_application_domains(collected)
    normalized = domain_list(normalize_domains(",".join(collected)))
    seen: set[str] = set()
    duplicates: list[str] = []
    for url in normalized:
        if url in seen and url not in duplicates:
            duplicates.append(url)
        seen.add(url)
    if duplicates and not force:
        errors.append(
            "The current request contains conflicting URLs across containers: "
            f"{', '.join(duplicates)}. Use force_domain_override=true to proceed."
        )
    if errors:
        return {"errors": errors}
    conflicts: list[dict[str, Any]] = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        url = item.get("url") if isinstance(item, dict) else None
        if name is None or str(name).strip() == "":
            errors.append("Service container name is required to apply URLs.")
            continue
        # `$service->applications()->where('name', $name)` — databases never match.
        application = next((a for a in applications if a["name"] == name), None)
        if application is None:
            errors.append(f"Service container with '{name}' not found.")
            continue
        if url is not None and str(url).strip() != "":
            fqdn = normalize_domains(str(url))
            found = find_conflicts(domain_list(fqdn), other_apps(application["uuid"]))
            if found and not force:
                conflicts.extend(found)
                continue
        else:
            fqdn = None  # url "" or null clears the domain
        application["fqdn"] = fqdn
        on_save(application)
    if errors:
        return {"errors": errors}
    if conflicts:
        return {"conflicts": conflicts, "warning": CONFLICT_WARNING}
    return None


def parse_magic_key(key: str) -> tuple[str, str, str | None]:
    """parseServiceEnvironmentVariable (bootstrap/helpers/services.php:412): the name part as
    written, the same lowercased (for the host), and the port if the last `_` part is digits."""
    prefix = "SERVICE_URL_" if key.startswith("SERVICE_URL_") else "SERVICE_FQDN_"
    rest = key[len(prefix) :]
    last = rest.rsplit("_", 1)[-1]
    if "_" in key and last.isdigit():
        name = rest.rsplit("_", 1)[0] if "_" in rest else ""
        return name, name.lower(), last
    return rest, rest.lower(), None


def first_without_port(fqdn: str) -> str:
    # firstDomainFromList() + getFqdnWithoutPort(): scheme://host[/path] of the first entry.
    first = domain_list(fqdn)[0] if domain_list(fqdn) else fqdn
    try:
        parts = urlsplit(first)
    except ValueError:
        return first
    if not parts.scheme:
        return first
    return f"{parts.scheme}://{parts.hostname}{parts.path}"


def magic_key_values(
    key: str,
    value: str | None,
    application: dict[str, Any] | None,
    service_uuid: str,
    base_host: str,
) -> tuple[dict[str, str], str | None]:
    """One key-form SERVICE_URL_*/SERVICE_FQDN_* (parsers.php:1775-1914). Returns the env
    vars to upsert and the fqdn to save (only when the application's fqdn is null)."""
    name, lowered, port = parse_magic_key(key)
    if application is not None and (application.get("fqdn") or "") != "":
        url = fqdn = first_without_port(application["fqdn"])
    else:  # generateFqdn / generateUrl with the sslip wildcard: "<name>-<uuid>.<ip>.sslip.io"
        fqdn = f"{lowered}-{service_uuid}.{base_host}"
        url = f"http://{fqdn}"
    fqdn_env = fqdn.split("://", 1)[-1]
    if value and value.startswith("/") and value != "/":  # a path as the value is appended
        fqdn = fqdn if fqdn.endswith(value) else fqdn + value
        url = url if url.endswith(value) else url + value
        fqdn_env = fqdn_env if fqdn_env.endswith(value) else fqdn_env + value
    url_with_port = f"{url}:{port}" if port else url
    values = {f"SERVICE_FQDN_{name}": fqdn_env, f"SERVICE_URL_{name}": url}
    if port:
        values[f"SERVICE_FQDN_{name}_{port}"] = f"{fqdn_env}:{port}"
        values[f"SERVICE_URL_{name}_{port}"] = url_with_port
    save = None
    if application is not None and application.get("fqdn") is None:
        save = url_with_port  # `is_null($savedService->fqdn)` → fqdn = url with port
    return values, save
