"""Service rows as Coolify stores and shows them: the sub-resources and env vars a parse
implies (Service::parse → serviceParser, bootstrap/helpers/parsers.php), and the API's
serialisation (ServicesController::removeSensitiveData / serializeApiResponse)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stacks.coolify_simulator import domains, envs, parser


class ServiceParse:
    """One Service::parse() against the simulator's state (ids, uuids, env store)."""

    def __init__(
        self,
        *,
        new_id: Callable[[], int],
        new_uuid: Callable[[], str],
        version: str,
        now: Callable[[], str],
        host: str,
    ) -> None:
        self._id, self._uuid, self.version = new_id, new_uuid, version
        self.now, self.host = now, host

    def run(
        self,
        service: dict[str, Any],
        parsed: parser.ParsedCompose,
        store: dict[str, dict[str, Any]],
    ) -> None:
        """Service::parse() → serviceParser (bootstrap/helpers/parsers.php): upsert the
        sub-resources, the persistent volumes and the env vars the compose implies."""
        uuid = service["uuid"]
        service["docker_compose"] = parsed.rendered
        service["_volumes"] = list(parsed.volumes)
        now = self.now()
        old = {s["name"]: s for s in [*service["applications"], *service["databases"]]}
        applications, databases = [], []
        for name, spec in parsed.subs.items():
            row = old.get(name)
            if row is None or ("fqdn" in row) == spec.is_database:
                row = self._new_sub(service, name, spec, now)
            row["image"] = spec.image
            (databases if spec.is_database else applications).append(row)
        service["applications"], service["databases"] = applications, databases
        host = self.host  # sslip(): no wildcard domain on the simulated server
        for name, spec in parsed.subs.items():
            app = next((a for a in applications if a["name"] == name), None)
            for key, value in spec.magic_keys:  # key form: refreshed on every parse
                values, fqdn = domains.magic_key_values(key, value, app, uuid, host)
                if fqdn is not None and app is not None:
                    app["fqdn"] = fqdn
                for env_key, env_value in values.items():
                    self._upsert_env(store, env_key, {"value": env_value, "is_preview": False})
            for key in spec.value_urls:  # value form: firstOrCreate only
                if key in store:
                    continue
                _, lowered, port = domains.parse_magic_key(key)
                target = lowered.replace("_", "-")
                fqdn_host = f"{target}-{uuid}.{host}"
                value = f"http://{fqdn_host}" if key.startswith("SERVICE_URL_") else fqdn_host
                self._upsert_env(store, key, {"value": value, "is_preview": False})
                if (
                    app is not None
                    and target == name.lower().replace("_", "-")
                    and app["fqdn"] is None
                    and port is None
                ):
                    app["fqdn"] = f"http://{fqdn_host}"
        for key, default in parsed.variables.items():  # ${VAR:-default}: firstOrCreate
            if key.startswith(("SERVICE_URL_", "SERVICE_FQDN_")) or key in store:
                continue
            generated = parser.generated_value(key)
            self._upsert_env(store, key, {"value": generated if generated else default})

    def _new_sub(
        self, service: dict[str, Any], name: str, spec: parser.SubResource, now: str
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": self._id(),
            "uuid": self._uuid(),
            "name": name,
            "human_name": None,
            "description": None,
        }
        if not spec.is_database:
            row.update({"fqdn": None, "ports": None, "is_gzip_enabled": True})
            row.update({"is_stripprefix_enabled": True, "is_force_https_enabled": False})
        else:
            row.update({"public_port": None, "is_public": False})
        row.update(
            {
                "exposes": None,
                # service_applications.status defaults to 'exited'; the parser never sets it.
                "status": "exited",
                "exclude_from_status": False,
                "image": spec.image,
                "is_log_drain_enabled": False,
                "is_include_timestamps": False,
                "service_id": service["_id"],
                "last_online_at": now.replace("T", " ")[:19],
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
            }
        )
        return row

    def _upsert_env(
        self, store: dict[str, dict[str, Any]], key: str, attributes: dict[str, Any]
    ) -> dict[str, Any]:
        env = store.get(key)
        if env is None:
            env = store[key] = envs.new_env(self._id(), self._uuid(), key, self.version, self.now())
        envs.fill(env, attributes, self.now())
        return env


def upgrade_service(service: dict[str, Any]) -> dict[str, Any]:
    """A service saved by the simulator before this model (`_compose`, `_status`, "" fqdn)."""
    if "_compose_text" not in service:
        service["_compose_text"] = (service.pop("_compose", None) or {}).get("text", "")
        service.setdefault("databases", [])
        service.setdefault("_volumes", [])
        for key in ("_status", "_next", "_deleting_at", "_delete_flags"):
            service.pop(key, None)
        for app in service.get("applications", []):
            app["fqdn"] = app.get("fqdn") or None
    return service


def public_sub(row: dict[str, Any]) -> dict[str, Any]:
    # Every column but `domain_dns_statuses`; `id` hidden by the API's makeHidden.
    return {k: v for k, v in row.items() if k != "id"}


def serialize_api_response(data: dict[str, Any]) -> dict[str, Any]:
    # serializeApiResponse: uuid/description/name first, created_at/updated_at last.
    first = [k for k in ("id", "uuid", "description", "name") if k in data]
    last = [k for k in ("created_at", "updated_at") if k in data]
    middle = sorted(k for k in data if k not in first and k not in last)
    return {k: data[k] for k in [*first, *middle, *last]}


def public_project(project: dict[str, Any]) -> dict[str, Any]:
    return {k: project[k] for k in ("id", "uuid", "name", "description")}


def domains_of(service: dict[str, Any]) -> list[str]:
    # `$service->applications()->pluck('fqdn')->filter()->sort()->values()`
    return sorted(a["fqdn"] for a in service["applications"] if a["fqdn"])
