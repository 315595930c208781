"""A stateful fake of Coolify's API (v4.3), for tests, demos and `make run`. NOT Coolify.

It answers the endpoints cfadmin uses with Coolify's paths, bodies, status codes and error
shapes (../shared/coolify/openapi.yaml and API-NOTES.md): token abilities, unknown fields
refused with 422, strict base64 compose, statuses that move from `starting:unhealthy` to
`running:healthy` after a delay, deletes queued and finished a moment later, 200 calls/min per
token user then 429 with Retry-After. No Django, no network: `SimulatedCoolify.handle()` maps
one request to one response; server.py puts it on a socket with latency and faults.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import string
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

VERSION = "4.3.11"
SERVER_UUID = "sim0server0localhost0000"  # the one simulated server (24 characters)
ROOT_ABILITIES = frozenset({"root"})
SENSITIVE = frozenset({"root", "read:sensitive"})
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
PROJECT_NAME = re.compile(r"[A-Za-z0-9 \-_.@/&()#,:+]{3,255}")
SHELL_META = re.compile(r"[;&|`$<>(){}\[\]\\'\"!*?\s]")
ROUTE_UUID = re.compile(r"/[a-z0-9]{24}(?=/|$)")
VAR_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?]([^}]*))?\}")

SERVICE_CREATE_FIELDS = frozenset(
    {
        "type",
        "name",
        "description",
        "project_uuid",
        "server_uuid",
        "environment_name",
        "environment_uuid",
        "destination_uuid",
        "instant_deploy",
        "docker_compose_raw",
        "urls",
        "force_domain_override",
        "is_container_label_escape_enabled",
        "tags",
    }
)
SERVICE_UPDATE_FIELDS = frozenset(
    {
        "name",
        "description",
        "instant_deploy",
        "connect_to_docker_network",
        "docker_compose_raw",
        "urls",
        "force_domain_override",
        "is_container_label_escape_enabled",
    }
)
ENV_ITEM_FIELDS = frozenset(
    {
        "key",
        "value",
        "is_literal",
        "is_multiline",
        "is_shown_once",
        "comment",
        "is_preview",
    }
)


def new_uuid() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(24))


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if self.content_type == "application/json":
            return json.dumps(self.body).encode()
        return str(self.body).encode()


def error(status: int, message: str, **extra: Any) -> Response:
    return Response(status, {"message": message, **extra})


def validation_failed(errors: dict[str, Any]) -> Response:
    return Response(422, {"message": "Validation failed.", "errors": errors})


@dataclass
class Token:
    abilities: frozenset[str]
    user: str = "root"

    def can(self, ability: str) -> bool:
        return "root" in self.abilities or ability in self.abilities


@dataclass
class Timings:
    start_seconds: float = 1.0  # starting:unhealthy → running:healthy
    stop_seconds: float = 0.2
    delete_seconds: float = 0.5  # deletion queued → gone


class Clock:
    def now(self) -> float:
        return time.monotonic()


class SimulatedCoolify:
    """The fake's state and API. Thread-safe: one lock around every request."""

    def __init__(
        self,
        *,
        tokens: dict[str, Token] | None = None,
        rate_limit_per_minute: int = 200,
        timings: Timings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.tokens: dict[str, Token] = tokens or {}
        self.rate_limit_per_minute = rate_limit_per_minute
        self.timings = timings or Timings()
        self.clock = clock or Clock()
        self.calls: dict[str, deque[float]] = {}
        self.call_count = 0
        self.calls_by_route: Counter[str] = Counter()
        self.rate_limited = 0
        self.reset()

    # --- state ----------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self._next_id = 1
            self.projects: dict[str, dict[str, Any]] = {}
            self.services: dict[str, dict[str, Any]] = {}
            self.envs: dict[str, dict[str, dict[str, Any]]] = {}  # service uuid -> key -> env
            self.volumes: set[str] = set()  # named volumes on the (simulated) server
            self.deleted_services: list[dict[str, Any]] = []
            self.calls.clear()
            self.call_count = 0
            self.calls_by_route = Counter()
            self.rate_limited = 0
            server_uuid = SERVER_UUID
            self.servers = {
                server_uuid: {
                    "id": 0,
                    "uuid": server_uuid,
                    "name": "localhost",
                    "description": "Simulated server",
                    "ip": "127.0.0.1",
                    "user": "root",
                    "port": 22,
                    "proxy_type": "traefik",
                    "proxy": {},
                    "settings": {
                        "is_reachable": True,
                        "is_usable": True,
                        "is_build_server": False,
                        "wildcard_domain": "",
                    },
                }
            }

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_token(
        self, token: str, abilities: set[str] | frozenset[str], user: str = "root"
    ) -> None:
        with self.lock:
            self.tokens[token] = Token(frozenset(abilities), user)

    def snapshot(self) -> dict[str, Any]:
        """Everything, for tests and the `/_sim/state` page (secret values included: a fake)."""
        with self.lock:
            for service in self.services.values():
                self._advance(service)
            self._finish_deletes()
            return {
                "projects": list(self.projects.values()),
                "services": [
                    {
                        **self._public_service(s, Token(ROOT_ABILITIES)),
                        "deleting": s["_deleting_at"] is not None,
                        "envs": {k: e["value"] for k, e in self.envs.get(s["uuid"], {}).items()},
                    }
                    for s in self.services.values()
                ],
                "volumes": sorted(self.volumes),
                "deleted_services": self.deleted_services,
                "call_count": self.call_count,
                "calls_by_route": dict(self.calls_by_route),
                "rate_limited": self.rate_limited,
            }

    def export_state(self) -> dict[str, Any]:
        """The state as JSON-safe data, with every pending transition settled (for restarts)."""
        with self.lock:
            self._finish_deletes()
            services = {}
            for uuid, service in self.services.items():
                self._advance(service)
                if service["_next"] is not None:  # settle: a restart loses no started stack
                    service["_status"] = service["_next"][1]
                services[uuid] = {**service, "_next": None}
            return {
                "next_id": self._next_id,
                "projects": self.projects,
                "services": services,
                "envs": self.envs,
                "volumes": sorted(self.volumes),
                "deleted_services": self.deleted_services,
            }

    def import_state(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.reset()
            self._next_id = int(data.get("next_id", 1))
            self.projects = data.get("projects", {})
            self.services = {
                uuid: service
                for uuid, service in data.get("services", {}).items()
                if service.get("_deleting_at") is None  # a queued delete finished meanwhile
            }
            self.envs = {
                uuid: envs for uuid, envs in data.get("envs", {}).items() if uuid in self.services
            }
            self.volumes = {
                v for v in data.get("volumes", []) if v.split("_", 1)[0] in self.services
            }
            self.deleted_services = data.get("deleted_services", [])

    # --- dispatch ---------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        query = _parse_query(parts.query)
        with self.lock:
            self.call_count += 1
            self.calls_by_route[f"{method} {ROUTE_UUID.sub('/{uuid}', path)}"] += 1
            if path in ("/api/health", "/api/v1/health") and method == "GET":
                return Response(200, "OK", content_type="text/html")
            if not path.startswith("/api/v1/"):
                return error(404, "Not found.", docs="https://coolify.io/docs")
            token = self._authenticate(headers)
            if token is None:
                return error(401, "Unauthenticated.")
            limited = self._rate_limit(token)
            if limited is not None:
                self.rate_limited += 1
                return limited
            self._finish_deletes()  # a finished deletion is visible to every endpoint
            response = self._route(method, path[len("/api/v1") :], query, headers, body, token)
            response.headers.update(self._rate_headers(token))
            return response

    def _authenticate(self, headers: dict[str, str]) -> Token | None:
        value = headers.get("authorization", "")
        if not value.lower().startswith("bearer "):
            return None
        return self.tokens.get(value[7:].strip())

    def _rate_limit(self, token: Token) -> Response | None:
        if not self.rate_limit_per_minute:
            return None
        now = self.clock.now()
        window = self.calls.setdefault(token.user, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.rate_limit_per_minute:
            retry_after = max(1, math.ceil(window[0] + 60 - now))
            return Response(
                429,
                {"message": "Too Many Attempts."},
                headers={
                    "Retry-After": str(retry_after),
                    "X-RateLimit-Limit": str(self.rate_limit_per_minute),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time()) + retry_after),
                },
            )
        window.append(now)
        return None

    def _rate_headers(self, token: Token) -> dict[str, str]:
        if not self.rate_limit_per_minute:
            return {}
        used = len(self.calls.get(token.user, ()))
        return {
            "X-RateLimit-Limit": str(self.rate_limit_per_minute),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit_per_minute - used)),
        }

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        token: Token,
    ) -> Response:
        for pattern, handlers in ROUTES:
            match = pattern.fullmatch(path)
            if not match:
                continue
            handler_spec = handlers.get(method)
            if handler_spec is None:
                if "POST" in handlers and method == "GET":
                    moved = {"message": "This endpoint has changed to a POST request."}
                    return Response(405, moved, headers={"Allow": "POST"})
                return error(405, "Method not allowed.")
            ability, handler, takes_body = handler_spec
            if not token.can(ability):
                return error(403, f"Missing required permissions: {ability}")
            payload: Any = None
            if takes_body:
                payload, problem = _json_body(headers, body)
                if problem is not None:
                    return problem
            return handler(self, token=token, query=query, body=payload, **match.groupdict())
        return error(404, "Not found.", docs="https://coolify.io/docs")

    # --- version, projects, servers ---------------------------------------------------------

    def get_version(self, **_: Any) -> Response:
        return Response(200, VERSION, content_type="text/html")

    def list_projects(self, **_: Any) -> Response:
        return Response(200, [_public_project(p) for p in self.projects.values()])

    def create_project(self, *, body: dict[str, Any], **_: Any) -> Response:
        unknown = sorted(set(body) - {"name", "description"})
        if unknown:
            return validation_failed({k: ["This field is not allowed."] for k in unknown})
        name = body.get("name")
        if not isinstance(name, str) or not name:
            return validation_failed({"name": ["The name field is required."]})
        if not PROJECT_NAME.fullmatch(name):
            return validation_failed({"name": ["The name field format is invalid."]})
        uuid = new_uuid()
        environment = {
            "id": self._id(),
            "uuid": new_uuid(),
            "name": "production",
            "project_id": 0,
            "description": "",
            "created_at": timestamp(),
            "updated_at": timestamp(),
        }
        project = {
            "id": self._id(),
            "uuid": uuid,
            "name": name,
            "description": body.get("description") or "",
            "environments": [environment],
        }
        environment["project_id"] = project["id"]
        self.projects[uuid] = project
        return Response(201, {"uuid": uuid})

    def get_project(self, *, uuid: str, **_: Any) -> Response:
        project = self.projects.get(uuid)
        if project is None:
            return error(404, "Project not found.")
        return Response(200, project)

    def delete_project(self, *, uuid: str, **_: Any) -> Response:
        project = self.projects.get(uuid)
        if project is None:
            return error(404, "Project not found.")
        self._finish_deletes()
        env_ids = {e["id"] for e in project["environments"]}
        if any(s["environment_id"] in env_ids for s in self.services.values()):
            return error(400, "Project has resources, so it cannot be deleted.")
        del self.projects[uuid]
        return Response(200, {"message": "Project deleted."})

    def list_environments(self, *, uuid: str, **_: Any) -> Response:
        project = self.projects.get(uuid)
        if project is None:
            return error(404, "Project not found.")
        return Response(
            200, [{k: e[k] for k in ("id", "uuid", "name")} for e in project["environments"]]
        )

    def list_servers(self, **_: Any) -> Response:
        return Response(200, list(self.servers.values()))

    def get_server(self, *, uuid: str, query: dict[str, str], **_: Any) -> Response:
        server = self.servers.get(uuid)
        if server is None:
            return error(404, "Server not found.")
        if query.get("resources") == "true":
            return Response(200, {**server, "resources": self._resources()})
        return Response(200, server)

    def server_resources(self, *, uuid: str, **_: Any) -> Response:
        if uuid not in self.servers:
            return error(404, "Server not found.")
        return Response(200, self._resources())

    def _resources(self) -> list[dict[str, Any]]:
        return [
            {
                "id": s["_id"],
                "uuid": s["uuid"],
                "name": s["name"],
                "type": "service",
                "status": self._advance(s),
                "created_at": s["created_at"],
                "updated_at": s["updated_at"],
            }
            for s in self.services.values()
        ]

    # --- services ---------------------------------------------------------------------------

    def list_services(self, *, token: Token, **_: Any) -> Response:
        self._finish_deletes()
        return Response(200, [self._public_service(s, token) for s in self.services.values()])

    def get_service(self, *, uuid: str, token: Token, **_: Any) -> Response:
        self._finish_deletes()
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        return Response(200, self._public_service(service, token))

    def create_service(self, *, body: dict[str, Any], **_: Any) -> Response:
        unknown = sorted(set(body) - SERVICE_CREATE_FIELDS)
        if unknown:
            return validation_failed({k: ["This field is not allowed."] for k in unknown})
        if ("type" in body) == ("docker_compose_raw" in body):
            return validation_failed(
                {"docker_compose_raw": ["Exactly one of docker_compose_raw or type must be given."]}
            )
        if "type" in body:
            return error(404, "Invalid service type.", valid_service_types=[])
        missing = {
            f: [f"The {f.replace('_', ' ')} field is required."]
            for f in ("project_uuid", "server_uuid")
            if not body.get(f)
        }
        if missing:
            return validation_failed(missing)
        if not body.get("environment_name") and not body.get("environment_uuid"):
            return error(
                422, "You need to provide at least one of environment_name or environment_uuid."
            )
        name = body.get("name") or f"service-{new_uuid()[:8]}"
        if not isinstance(name, str) or len(name) > 255:
            return validation_failed({"name": ["The name may not be greater than 255 characters."]})
        compose, problem = _decode_compose(body["docker_compose_raw"])
        if problem is not None:
            return problem
        project = self.projects.get(body["project_uuid"])
        if project is None:
            return error(404, "Project not found.")
        if body["server_uuid"] not in self.servers:
            return error(404, "Server not found.")
        environment = next(
            (
                e
                for e in project["environments"]
                if e["name"] == body.get("environment_name")
                or e["uuid"] == body.get("environment_uuid")
            ),
            None,
        )
        if environment is None:
            return error(404, "Environment not found.")
        uuid = new_uuid()
        service = {
            "_id": self._id(),
            "uuid": uuid,
            "name": name,
            "description": body.get("description") or "",
            "environment_id": environment["id"],
            "server_id": 0,
            "destination_id": 0,
            "destination_type": "App\\Models\\StandaloneDocker",
            "service_type": None,
            "connect_to_docker_network": False,
            "is_container_label_escape_enabled": body.get(
                "is_container_label_escape_enabled", True
            ),
            "config_hash": "",
            "compose_parsing_version": "5",
            "created_at": timestamp(),
            "updated_at": timestamp(),
            "deleted_at": None,
            "docker_compose_raw": compose["text"],
            "docker_compose": compose["text"],
            "_status": "exited",
            "_next": None,
            "_deleting_at": None,
            "_compose": compose,
            "applications": [],
        }
        problem = self._apply_compose(
            service, compose, body.get("urls") or [], force=bool(body.get("force_domain_override"))
        )
        if problem is not None:
            return problem  # like Coolify: the just-created service is gone again
        self.services[uuid] = service
        self.envs[uuid] = {}
        self._create_referenced_envs(service, compose)
        for volume in compose["volumes"]:
            self.volumes.add(f"{uuid}_{volume}")
        if body.get("instant_deploy"):
            self._start(service)
        return Response(201, {"uuid": uuid, "domains": self._domains(service)})

    def update_service(self, *, uuid: str, body: dict[str, Any], **_: Any) -> Response:
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        unknown = sorted(set(body) - SERVICE_UPDATE_FIELDS)
        if unknown:
            return validation_failed({k: ["This field is not allowed."] for k in unknown})
        compose = service["_compose"]
        if "docker_compose_raw" in body:
            compose, problem = _decode_compose(body["docker_compose_raw"])
            if problem is not None:
                return problem
        urls = body.get("urls")
        if urls is None:
            urls = [
                {"name": a["name"], "url": a["fqdn"]} for a in service["applications"] if a["fqdn"]
            ]
        problem = self._apply_compose(
            service, compose, urls, force=bool(body.get("force_domain_override"))
        )
        if problem is not None:
            return problem
        for key in (
            "name",
            "description",
            "connect_to_docker_network",
            "is_container_label_escape_enabled",
        ):
            if key in body:
                service[key] = body[key]
        service["_compose"] = compose
        service["docker_compose_raw"] = service["docker_compose"] = compose["text"]
        service["updated_at"] = timestamp()
        self._create_referenced_envs(service, compose)
        if body.get("instant_deploy"):
            self._start(service)
        return Response(200, {"uuid": uuid, "domains": self._domains(service)})

    def delete_service(self, *, uuid: str, query: dict[str, str], **_: Any) -> Response:
        self._finish_deletes()
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        flags = {
            name: query.get(name, "true") != "false"
            for name in (
                "delete_configurations",
                "delete_volumes",
                "docker_cleanup",
                "delete_connected_networks",
            )
        }
        if service["_deleting_at"] is None:
            service["_deleting_at"] = self.clock.now() + self.timings.delete_seconds
            service["_delete_flags"] = flags
        return Response(200, {"message": "Service deletion request queued."})

    def start_service(self, *, uuid: str, **_: Any) -> Response:
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        if "running" in self._advance(service):
            return error(400, "Service is already running.")
        self._start(service)
        return Response(200, {"message": "Service starting request queued."})

    def stop_service(self, *, uuid: str, **_: Any) -> Response:
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        status = self._advance(service)
        if "exited" in status or "stopped" in status:
            return error(400, "Service is already stopped.")
        service["_next"] = (self.clock.now() + self.timings.stop_seconds, "exited")
        self._advance(service)
        return Response(200, {"message": "Service stopping request queued."})

    def restart_service(self, *, uuid: str, **_: Any) -> Response:
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        self._start(service)
        return Response(200, {"message": "Service restaring request queued."})

    def service_logs(self, *, uuid: str, query: dict[str, str], **_: Any) -> Response:
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        name = query.get("sub_service_name", "")
        if name not in service["_compose"]["services"]:
            return error(404, "Sub-service not found.")
        status = self._advance(service)
        lines = [f"[simulator] {name} container created"]
        if "running" in status:
            lines += [f"[simulator] {name} started", f"[simulator] {name} listening, healthy"]
        return Response(200, {"logs": "\n".join(lines)})

    # --- env vars ---------------------------------------------------------------------------

    def list_envs(self, *, uuid: str, token: Token, **_: Any) -> Response:
        if uuid not in self.services:
            return error(404, "Service not found.")
        return Response(200, [self._public_env(e, token) for e in self.envs[uuid].values()])

    def bulk_envs(self, *, uuid: str, body: dict[str, Any], token: Token, **_: Any) -> Response:
        if uuid not in self.services:
            return error(404, "Service not found.")
        data = body.get("data")
        if not isinstance(data, list) or not data:
            return error(400, "Bulk data is required.")
        saved = []
        for item in data:  # like Coolify: stops at the first bad item, earlier ones are kept
            if not isinstance(item, dict):
                return validation_failed({"data": ["Each item must be an object."]})
            unknown = sorted(set(item) - ENV_ITEM_FIELDS)
            if unknown:
                return validation_failed({k: ["This field is not allowed."] for k in unknown})
            key = item.get("key")
            if not isinstance(key, str) or not ENV_KEY.fullmatch(key) or len(key) > 255:
                return validation_failed({"key": ["The key field format is invalid."]})
            saved.append(self._public_env(self._set_env(uuid, key, item), token))
        return Response(201, saved)

    def _set_env(self, uuid: str, key: str, item: dict[str, Any]) -> dict[str, Any]:
        env = self.envs[uuid].get(key)
        if env is None:
            env = {
                "id": self._id(),
                "uuid": new_uuid(),
                "key": key,
                "value": "",
                "is_literal": False,
                "is_multiline": False,
                "is_preview": False,
                "is_runtime": True,
                "is_buildtime": False,
                "is_shared": False,
                "is_shown_once": False,
                "comment": "",
                "version": VERSION,
                "created_at": timestamp(),
                "updated_at": timestamp(),
            }
            self.envs[uuid][key] = env
        env["value"] = item.get("value")  # omitting value stores null, as Coolify does
        for flag in ("is_literal", "is_multiline", "is_shown_once", "is_preview"):
            if flag in item:
                env[flag] = bool(item[flag])
        if "comment" in item:
            env["comment"] = item["comment"] or ""
        env["updated_at"] = timestamp()
        return env

    def _create_referenced_envs(self, service: dict[str, Any], compose: dict[str, Any]) -> None:
        for key, default in compose["variables"].items():
            if key not in self.envs[service["uuid"]]:
                self._set_env(service["uuid"], key, {"value": default or ""})

    # --- status machinery -------------------------------------------------------------------

    def _start(self, service: dict[str, Any]) -> None:
        service["_status"] = "starting:unhealthy"
        service["_next"] = (self.clock.now() + self.timings.start_seconds, "running:healthy")

    def _advance(self, service: dict[str, Any]) -> str:
        pending = service.get("_next")
        if pending is not None and self.clock.now() >= pending[0]:
            service["_status"] = pending[1]
            service["_next"] = None
            for app in service["applications"]:
                app["status"] = pending[1]
        return service["_status"]

    def _finish_deletes(self) -> None:
        now = self.clock.now()
        for uuid, service in list(self.services.items()):
            if service["_deleting_at"] is not None and now >= service["_deleting_at"]:
                flags = service.get("_delete_flags", {})
                if flags.get("delete_volumes", True):
                    self.volumes = {v for v in self.volumes if not v.startswith(f"{uuid}_")}
                del self.services[uuid]
                self.envs.pop(uuid, None)
                self.deleted_services.append({"uuid": uuid, "name": service["name"], **flags})

    def _apply_compose(
        self, service: dict[str, Any], compose: dict[str, Any], urls: Any, *, force: bool
    ) -> Response | None:
        if not isinstance(urls, list):
            return validation_failed({"urls": ["The urls must be an array."]})
        fqdn: dict[str, str] = {}
        bad = []
        for item in urls:
            if not isinstance(item, dict) or set(item) - {"name", "url"}:
                bad.append("Each url needs exactly name and url.")
                continue
            name, url = item.get("name"), str(item.get("url") or "")
            if name not in compose["services"]:
                bad.append(f"Service {name} not found in the compose file.")
                continue
            for one in filter(None, url.split(",")):
                parts = urlsplit(one)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    bad.append(f"Invalid URL: {one}")
            fqdn[name] = url
        if bad:
            return Response(422, {"message": "Validation failed.", "errors": bad})
        if not force:
            conflicts = self._domain_conflicts(service["uuid"], fqdn)
            if conflicts:
                return Response(
                    409,
                    {
                        "message": "Domain conflicts detected. Use force_domain_override=true to "
                        "proceed.",
                        "conflicts": conflicts,
                        "warning": "Using the same domain for multiple resources can cause routing "
                        "conflicts and unpredictable behavior.",
                    },
                )
        apps = []
        for name, spec in compose["services"].items():
            previous = next((a for a in service["applications"] if a["name"] == name), None)
            apps.append(
                {
                    "id": previous["id"] if previous else self._id(),
                    "uuid": previous["uuid"] if previous else new_uuid(),
                    "name": name,
                    "human_name": name,
                    "fqdn": fqdn.get(name, ""),
                    "image": str((spec or {}).get("image", "")),
                    "status": previous["status"] if previous else "exited",
                    "exclude_from_status": False,
                    "service_id": service["_id"],
                }
            )
        service["applications"] = apps
        return None

    def _domain_conflicts(self, uuid: str, fqdn: dict[str, str]) -> list[dict[str, Any]]:
        wanted = {urlsplit(u).hostname: u for url in fqdn.values() for u in url.split(",") if u}
        conflicts = []
        for other in self.services.values():
            if other["uuid"] == uuid:
                continue  # a service queued for deletion keeps its domains until it is gone
            for app in other["applications"]:
                for url in filter(None, app["fqdn"].split(",")):
                    host = urlsplit(url).hostname
                    if host in wanted:
                        conflicts.append(
                            {
                                "domain": host,
                                "resource_name": other["name"],
                                "resource_uuid": other["uuid"],
                                "resource_type": "service",
                                "message": f"Domain {host} is already in use by service "
                                f"'{other['name']}'",
                            }
                        )
        return conflicts

    def _domains(self, service: dict[str, Any]) -> list[str]:
        return sorted(a["fqdn"] for a in service["applications"] if a["fqdn"])

    def _public_service(self, service: dict[str, Any], token: Token) -> dict[str, Any]:
        status = self._advance(service)
        public = {k: v for k, v in service.items() if not k.startswith("_") and v is not None}
        public["status"] = status
        public["server_status"] = True
        public["applications"] = [dict(a) for a in service["applications"]]
        public["databases"] = []
        if not (token.abilities & SENSITIVE):
            public.pop("docker_compose_raw", None)
            public.pop("docker_compose", None)
        return public

    def _public_env(self, env: dict[str, Any], token: Token) -> dict[str, Any]:
        public = {k: v for k, v in env.items() if v is not None}
        if token.abilities & SENSITIVE:
            if env.get("value") is not None:
                public["real_value"] = env["value"]
        else:
            public.pop("value", None)
        return public


def _public_project(project: dict[str, Any]) -> dict[str, Any]:
    return {k: project[k] for k in ("id", "uuid", "name", "description")}


def _parse_query(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=True))


def _json_body(headers: dict[str, str], body: bytes) -> tuple[Any, Response | None]:
    if "application/json" not in headers.get("content-type", ""):
        return None, Response(
            400, {"message": "Invalid request.", "error": "Content-Type must be application/json."}
        )
    try:
        payload = json.loads(body or b"")
    except ValueError:
        return None, Response(400, {"message": "Invalid request.", "error": "Invalid JSON."})
    if not payload or not isinstance(payload, dict):
        return None, Response(400, {"message": "Invalid request.", "error": "Empty JSON."})
    return payload, None


def _decode_compose(raw: Any) -> tuple[dict[str, Any], Response | None]:
    not_base64 = validation_failed(
        {"docker_compose_raw": "The docker_compose_raw should be base64 encoded."}
    )
    if (
        not isinstance(raw, str)
        or not raw
        or len(raw) % 4
        or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", raw)
    ):
        return {}, not_base64
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return {}, not_base64
    if text.startswith("\ufeff"):
        return {}, validation_failed({"docker_compose_raw": "Invalid YAML: byte order mark."})
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return {}, validation_failed({"docker_compose_raw": f"Invalid YAML: {exc}"})
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        return {}, validation_failed(
            {"docker_compose_raw": "The docker_compose_raw should contain services."}
        )
    volumes = list((data.get("volumes") or {}).keys())
    for name in [*data["services"], *volumes]:
        if SHELL_META.search(str(name)):
            return {}, validation_failed(
                {"docker_compose_raw": f"Invalid name {name!r}: shell metacharacters."}
            )
    variables = {m.group(1): m.group(2) or "" for m in VAR_REFERENCE.finditer(text)}
    return {
        "text": text,
        "services": data["services"],
        "volumes": volumes,
        "variables": variables,
    }, None


Handler = tuple[str, Callable[..., Response], bool]
S = SimulatedCoolify
UUID = r"(?P<uuid>[A-Za-z0-9]+)"
ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"/version"), {"GET": ("read", S.get_version, False)}),
    (
        re.compile(r"/projects"),
        {"GET": ("read", S.list_projects, False), "POST": ("write", S.create_project, True)},
    ),
    (
        re.compile(rf"/projects/{UUID}"),
        {"GET": ("read", S.get_project, False), "DELETE": ("write", S.delete_project, False)},
    ),
    (re.compile(rf"/projects/{UUID}/environments"), {"GET": ("read", S.list_environments, False)}),
    (re.compile(r"/servers"), {"GET": ("read", S.list_servers, False)}),
    (re.compile(rf"/servers/{UUID}"), {"GET": ("read", S.get_server, False)}),
    (re.compile(rf"/servers/{UUID}/resources"), {"GET": ("read", S.server_resources, False)}),
    (
        re.compile(r"/services"),
        {"GET": ("read", S.list_services, False), "POST": ("write", S.create_service, True)},
    ),
    (
        re.compile(rf"/services/{UUID}"),
        {
            "GET": ("read", S.get_service, False),
            "PATCH": ("write", S.update_service, True),
            "DELETE": ("write", S.delete_service, False),
        },
    ),
    (re.compile(rf"/services/{UUID}/start"), {"POST": ("deploy", S.start_service, False)}),
    (re.compile(rf"/services/{UUID}/stop"), {"POST": ("deploy", S.stop_service, False)}),
    (re.compile(rf"/services/{UUID}/restart"), {"POST": ("deploy", S.restart_service, False)}),
    (re.compile(rf"/services/{UUID}/logs"), {"GET": ("read", S.service_logs, False)}),
    (re.compile(rf"/services/{UUID}/envs"), {"GET": ("read", S.list_envs, False)}),
    (re.compile(rf"/services/{UUID}/envs/bulk"), {"PATCH": ("write", S.bulk_envs, True)}),
]
