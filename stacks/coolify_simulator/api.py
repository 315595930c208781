"""A stateful fake of Coolify's API (v4.3.11), for tests, demos and `make run`. NOT Coolify.

It follows Coolify's server code, not just its OpenAPI spec (research notes: API-NOTES.md).
This module holds the state and the routing; each behaviour lives in its own module:
rules (validation, Laravel middlewares), parser (compose), naming (containers, volumes),
domains (urls, SERVICE_URL_*), envs (environment variables), statuses (aggregation),
jobs (queued lifecycle jobs, containers, status checks), ratelimit (throttle:api).
No Django, no network, no threads: `SimulatedCoolify.handle()` maps one request to one
response after replaying every job due by the clock; server.py puts it on a socket.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from stacks.coolify_simulator import (
    domains,
    envs,
    jobs,
    naming,
    parser,
    resources,
    rules,
    validation,
)
from stacks.coolify_simulator.ratelimit import FixedWindowLimiter
from stacks.coolify_simulator.responses import (
    Response,
    error,
    server_error,
    validation_failed,
)
from stacks.coolify_simulator.statuses import service_status

__all__ = ["SERVER_UUID", "VERSION", "Clock", "Response", "SimulatedCoolify", "Timings", "Token"]

VERSION = "4.3.11"  # config/constants.php (tests monkeypatch it: read it at call time)
SERVER_UUID = "sim0server0localhost0000"  # the one simulated server (24 characters)
SERVER_IP = "127.0.0.1"
ROOT_ABILITIES = frozenset({"root"})
SENSITIVE = frozenset({"root", "read:sensitive"})
ROUTE_UUID = re.compile(r"/[a-z0-9]{24}(?=/|$)")
# `Limit::perMinute(1000)->by($request->user()?->id ?: $request->ip())` for `api/health`
# (app/Providers/RouteServiceProvider.php): unauthenticated, so by IP — loopback here.
HEALTH_LIMIT = 1000
HEALTH_KEY = "ip:127.0.0.1"


def new_uuid() -> str:
    # new_public_id(): Str::lower(Str::random(24)).
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(24))


def timestamp() -> str:
    return jobs.iso(time.time())


@dataclass
class Token:
    abilities: frozenset[str]
    user: str = "root"

    def can(self, ability: str) -> bool:
        return "root" in self.abilities or ability in self.abilities

    @property
    def sensitive(self) -> bool:
        # root or read:sensitive (and the user is admin/owner — every simulated user is).
        return bool(self.abilities & SENSITIVE)


@dataclass
class Timings:
    """Durations of the simulated server, in clock seconds.

    start_seconds: `docker compose up` (Activity queued → finished; reads starting:unhealthy).
    stop_seconds: `docker stop` + `docker rm -f` inside StopService.
    delete_seconds: DeleteResourceJob after its stop: cleanup, then the row is gone.
    queue_seconds: lag before a queued job runs (StartService, StopService, RestartService,
        DeleteResourceJob).
    refresh_seconds: period of the container-status check (GetContainersStatus). Stored
        sub-resource statuses change only then, or when Coolify writes them (StopService).
        0 = continuous.
    health_seconds: a Docker healthcheck stays `starting` this long after its container starts.
    save_seconds: StartService's saveComposeConfigs between StopService and the Activity (the
        first `exited` of a restart).
    """

    start_seconds: float = 1.0
    stop_seconds: float = 0.2
    delete_seconds: float = 0.5
    queue_seconds: float = 0.0
    refresh_seconds: float = 0.25
    health_seconds: float = 0.0
    save_seconds: float = 0.0


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
        noise_seed: int | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.tokens: dict[str, Token] = tokens or {}
        self.timings = timings or Timings()
        self._clock = clock or Clock()
        self._noise_seed = noise_seed
        self.limiter = FixedWindowLimiter(rate_limit_per_minute)
        self.reset()

    # --- configuration -------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, new: Clock) -> None:
        """Swapping clocks (tests) moves every pending time by the difference."""
        with self.lock:
            delta = new.now() - self._clock.now()
            self._clock = new
            self.lifecycle.shift(delta)
            self.limiter.shift(delta)

    @property
    def rate_limit_per_minute(self) -> int:
        return self.limiter.limit

    @rate_limit_per_minute.setter
    def rate_limit_per_minute(self, value: int) -> None:
        self.limiter.limit = int(value)

    @property
    def noise_seed(self) -> int | None:
        return self._noise_seed

    @noise_seed.setter
    def noise_seed(self, seed: int | None) -> None:
        """Switch the status noise on (a seed) or off (None) from now on."""
        with self.lock:
            self._noise_seed = seed
            self.lifecycle.reseed(seed)

    def wall_now(self) -> float:
        return time.time()

    # --- state ---------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self._next_id = 1
            self.projects: dict[str, dict[str, Any]] = {}
            self.services: dict[str, dict[str, Any]] = {}
            self.envs: dict[str, dict[str, dict[str, Any]]] = {}  # service uuid → key → env
            self.volumes: set[str] = set()  # Docker volumes on the simulated server
            self.deleted_services: list[dict[str, Any]] = []
            self._parsed: dict[tuple[str, str], parser.ParsedCompose] = {}
            self.limiter.windows.clear()
            self.call_count = 0
            self.calls_by_route: Counter[str] = Counter()
            self.rate_limited = 0
            self.lifecycle = jobs.Lifecycle(self, self._noise_seed)
            self.servers = {
                SERVER_UUID: {
                    "id": 0,
                    "uuid": SERVER_UUID,
                    "name": "localhost",
                    "description": "Simulated server",
                    "ip": SERVER_IP,
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
            self.lifecycle.advance(self.clock.now())
            root = Token(ROOT_ABILITIES)
            return {
                "projects": list(self.projects.values()),
                "services": [
                    {
                        **self._public_service(s, root),
                        "deleting": s["_deleting"] is not None,
                        "envs": {k: e["value"] for k, e in self.envs.get(s["uuid"], {}).items()},
                    }
                    for s in self.services.values()
                ],
                "volumes": sorted(self.volumes),
                "containers": sorted(self.lifecycle.containers),
                "mounts": {  # container -> the Docker volumes it mounts (data recovery)
                    name: list(c.get("mounts", []))
                    for name, c in sorted(self.lifecycle.containers.items())
                },
                "deleted_services": self.deleted_services,
                "call_count": self.call_count,
                "calls_by_route": dict(self.calls_by_route),
                "rate_limited": self.rate_limited,
            }

    def export_state(self) -> dict[str, Any]:
        """The state as JSON-safe data, every pending job settled (a restart loses nothing)."""
        with self.lock:
            self.lifecycle.advance(self.clock.now())
            self.lifecycle.settle()
            return json.loads(
                json.dumps(
                    {
                        "next_id": self._next_id,
                        "projects": self.projects,
                        "services": self.services,
                        "envs": self.envs,
                        "volumes": sorted(self.volumes),
                        "deleted_services": self.deleted_services,
                        "docker": self.lifecycle.export(),
                    }
                )
            )

    def import_state(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.reset()
            self._next_id = int(data.get("next_id", 1))
            self.projects = data.get("projects", {})
            self.services = {
                uuid: resources.upgrade_service({**service, "_deleting": None})
                for uuid, service in data.get("services", {}).items()
                if service.get("_deleting") is None  # a queued delete finished meanwhile
                and service.get("_deleting_at") is None
            }
            self.envs = {
                uuid: envs_ for uuid, envs_ in data.get("envs", {}).items() if uuid in self.services
            }
            self.volumes = set(data.get("volumes", []))
            self.deleted_services = data.get("deleted_services", [])
            self.lifecycle.load(data.get("docker") or {})
            if "docker" not in data:  # a state file of the simulator before containers
                for uuid, service in self.services.items():
                    if "running" in str(data["services"][uuid].get("_status", "")):
                        self.lifecycle.adopt_running(service)

    # --- what the jobs need ----------------------------------------------------------------

    def sub_resources(self, service: dict[str, Any]) -> list[dict[str, Any]]:
        return [*service["applications"], *service["databases"]]

    def parsed(self, service: dict[str, Any]) -> parser.ParsedCompose:
        key = (service["uuid"], service["_compose_text"])
        if key not in self._parsed:
            self._parsed[key] = parser.parse(service["_compose_text"], service["uuid"])
        return self._parsed[key]

    def sub_spec(self, service: dict[str, Any], name: str) -> parser.SubResource | None:
        return self.parsed(service).subs.get(name)

    def forget_service(self, uuid: str, flags: dict[str, bool]) -> None:
        service = self.services.pop(uuid, None)
        self.envs.pop(uuid, None)
        if service is not None:
            self.deleted_services.append({"uuid": uuid, "name": service["name"], **flags})

    # --- dispatch ------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        with self.lock:
            self.call_count += 1
            self.calls_by_route[f"{method} {ROUTE_UUID.sub('/{uuid}', path)}"] += 1
            if path in ("/api/health", "/api/v1/health") and method == "GET":
                # No auth on these routes, so throttle:api keys them by IP; RouteServiceProvider
                # gives `api/health` 1000/min and `api/v1/health` the API limit.
                allowed, rate_headers = self.limiter.attempt(
                    HEALTH_KEY,
                    self.clock.now(),
                    limit=HEALTH_LIMIT if path == "/api/health" else None,
                )
                if not allowed:
                    self.rate_limited += 1
                    return Response(429, {"message": "Too Many Attempts."}, headers=rate_headers)
                return Response(200, "OK", content_type="text/html", headers=rate_headers)
            if not path.startswith("/api/v1/"):
                return error(404, "Not found.", docs="https://coolify.io/docs")
            token = self._authenticate(headers)
            if token is None:  # auth:sanctum runs before throttle: 401s are not counted
                return error(401, "Unauthenticated.")
            allowed, rate_headers = self.limiter.attempt(token.user, self.clock.now())
            if not allowed:
                self.rate_limited += 1
                return Response(429, {"message": "Too Many Attempts."}, headers=rate_headers)
            self.lifecycle.advance(self.clock.now())
            # TrimStrings + ConvertEmptyStringsToNull on the query string (app/Http/Kernel.php).
            query = rules.clean_input(dict(parse_qsl(parts.query, keep_blank_values=True)))
            try:
                response = self._route(method, path[len("/api/v1") :], query, headers, body, token)
            except parser.YamlError:
                response = server_error()  # Symfony ParseException, uncaught → 500
            response.headers.update(rate_headers)
            return response

    def _authenticate(self, headers: dict[str, str]) -> Token | None:
        value = headers.get("authorization", "")
        if not value.lower().startswith("bearer "):
            return None
        return self.tokens.get(value[7:].strip())

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
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
                    # routes/api.php:384-386 — the old GET lifecycle routes.
                    moved = {"message": "This endpoint has changed to a POST request."}
                    return Response(405, moved, headers={"Allow": "POST"})
                return error(405, "Method not allowed.")
            ability, handler, takes_body = handler_spec
            if not token.can(ability):  # api.ability:<ability>
                return error(403, f"Missing required permissions: {ability}")
            payload: Any = None
            if takes_body:
                payload, problem = validation.json_body(headers, body)
                if problem is not None:
                    return problem
                payload = rules.clean_input(payload)  # the same middlewares, recursively
            return handler(self, token=token, query=query, body=payload, **match.groupdict())
        return error(404, "Not found.", docs="https://coolify.io/docs")

    # --- version, projects, servers ------------------------------------------------------

    def get_version(self, **_: Any) -> Response:
        return Response(200, VERSION, content_type="text/html")

    def list_projects(self, **_: Any) -> Response:
        return Response(200, [resources.public_project(p) for p in self.projects.values()])

    def create_project(self, *, body: dict[str, Any], **_: Any) -> Response:
        # ProjectController::create_project (:248): nameRules + descriptionRules, extras 422.
        problems = rules.merge_errors(
            rules.validate(
                body,
                {"name": rules.name_rules(), "description": rules.description_rules()},
                rules.COMBINED_MESSAGES,
            ),
            rules.unknown_fields(body, frozenset({"name", "description"})),
        )
        if problems:
            return validation_failed(problems)
        uuid = new_uuid()
        project = {
            "id": self._id(),
            "uuid": uuid,
            # HasSafeStringAttribute: strip_tags on name and description (null → "").
            "name": rules.strip_tags(body["name"]),
            "description": rules.strip_tags(body.get("description")),
            "environments": [],
        }
        # Project::created hook: a `production` environment.
        project["environments"].append(
            {
                "id": self._id(),
                "uuid": new_uuid(),
                "name": "production",
                "project_id": project["id"],
                "description": None,
                "created_at": timestamp(),
                "updated_at": timestamp(),
            }
        )
        self.projects[uuid] = project
        return Response(201, {"uuid": uuid})

    def update_project(self, *, uuid: str, body: dict[str, Any], **_: Any) -> Response:
        # ProjectController::update_project (:367): name nullable; 201 {uuid, name, description}.
        problems = rules.merge_errors(
            rules.validate(
                body,
                {
                    "name": rules.name_rules(required=False),
                    "description": rules.description_rules(),
                },
                rules.COMBINED_MESSAGES,
            ),
            rules.unknown_fields(body, frozenset({"name", "description"})),
        )
        if problems:
            return validation_failed(problems)
        project = self.projects.get(uuid)
        if project is None:
            return error(404, "Project not found.")
        for name in ("name", "description"):
            if name in body and not (name == "name" and body[name] is None):
                project[name] = rules.strip_tags(body[name])
        return Response(
            201, {"uuid": uuid, "name": project["name"], "description": project["description"]}
        )

    def get_project(self, *, uuid: str, **_: Any) -> Response:
        project = self.projects.get(uuid)
        if project is None:
            return error(404, "Project not found.")
        return Response(200, project)

    def delete_project(self, *, uuid: str, **_: Any) -> Response:
        project = self.projects.get(uuid)
        if project is None:
            return error(404, "Project not found.")
        env_ids = {e["id"] for e in project["environments"]}
        # A service queued for deletion still counts until DeleteResourceJob removed its row.
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

    def get_server(self, *, uuid: str, query: dict[str, Any], **_: Any) -> Response:
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
                "status": self.status(s),
                "created_at": s["created_at"],
                "updated_at": s["updated_at"],
            }
            for s in self.services.values()
        ]

    # --- services: read ------------------------------------------------------------------

    def status(self, service: dict[str, Any]) -> str:
        # Service::getStatusAttribute — computed on every read.
        starting = self.lifecycle.is_starting(service["uuid"])
        return service_status(starting, self.sub_resources(service))

    def list_services(self, *, token: Token, **_: Any) -> Response:
        # SC:233-252: applications/databases come along only because the status accessor
        # loads them — and it returns early while the service is starting.
        return Response(
            200,
            [self._public_service(s, token, listing=True) for s in self.services.values()],
        )

    def get_service(self, *, uuid: str, token: Token, **_: Any) -> Response:
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        return Response(200, resources.serialize_api_response(self._public_service(service, token)))

    def _public_service(
        self, service: dict[str, Any], token: Token, *, listing: bool = False
    ) -> dict[str, Any]:
        public = {
            k: v
            for k, v in service.items()
            if not k.startswith("_") and v is not None and k not in ("applications", "databases")
        }
        public["server_status"] = True
        status = self.status(service)
        public["status"] = status
        if not (listing and self.lifecycle.is_starting(service["uuid"])):
            public["applications"] = [resources.public_sub(a) for a in service["applications"]]
            public["databases"] = [resources.public_sub(d) for d in service["databases"]]
        if not token.sensitive:  # docker_compose(_raw) only with read:sensitive
            public.pop("docker_compose_raw", None)
            public.pop("docker_compose", None)
        return public

    # --- services: write -----------------------------------------------------------------

    def create_service(self, *, body: dict[str, Any], **_: Any) -> Response:
        """ServicesController::create_service (SC:360-770), its checks in their order."""
        problems = rules.merge_errors(
            validation.service_errors(body, create=True),
            rules.unknown_fields(body, validation.SERVICE_CREATE_FIELDS),
        )
        if problems:
            return validation_failed(problems)
        if validation.filled(body.get("type")) and validation.filled(
            body.get("docker_compose_raw")
        ):
            return error(
                422,
                "You cannot provide both service type and docker_compose_raw. Use one or the "
                "other.",
            )
        if not validation.filled(body.get("environment_name")) and not validation.filled(
            body.get("environment_uuid")
        ):
            return error(
                422, "You need to provide at least one of environment_name or environment_uuid."
            )
        project = self.projects.get(body["project_uuid"])
        if project is None:
            return error(404, "Project not found.")
        environment = next(
            (e for e in project["environments"] if e["name"] == body.get("environment_name")),
            None,
        ) or next(
            (e for e in project["environments"] if e["uuid"] == body.get("environment_uuid")),
            None,
        )
        if environment is None:
            return error(404, "Environment not found.")
        if body["server_uuid"] not in self.servers:
            return error(404, "Server not found.")
        if not validation.filled(body.get("docker_compose_raw")):
            return error(404, "Invalid service type.", valid_service_types=[])
        text, problem = validation.decode_compose(body["docker_compose_raw"])
        if problem is not None:
            return problem
        uuid = new_uuid()
        parsed, problem = validation.parse_or_422(text, uuid)
        if problem is not None:
            return problem
        now = timestamp()
        service: dict[str, Any] = {
            "_id": self._id(),
            "uuid": uuid,
            # `$request->name ?? 'service-'.str()->random(10)`, through strip_tags.
            "name": rules.strip_tags(body["name"])
            if body.get("name") is not None
            else f"service-{new_uuid()[:10]}",
            "description": rules.strip_tags(body.get("description")),
            "environment_id": environment["id"],
            "server_id": 0,
            "destination_id": 0,
            "destination_type": "App\\Models\\StandaloneDocker",
            "service_type": None,
            "connect_to_docker_network": False,
            "is_container_label_escape_enabled": rules.request_boolean(
                body.get("is_container_label_escape_enabled"), True
            ),
            "config_hash": None,
            "compose_parsing_version": "5",
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
            "docker_compose_raw": parsed.raw,
            "docker_compose": parsed.rendered,
            "_compose_text": text,
            "_volumes": [],
            "_deleting": None,
            "applications": [],
            "databases": [],
        }
        self.services[uuid] = service  # saved before parse() and applyServiceUrls
        self.envs[uuid] = {}
        self.parse_service(service)
        urls = body.get("urls")
        if isinstance(urls, list):
            failed = self._apply_urls(service, urls, body.get("force_domain_override"))
            if failed is not None:
                # SC:554-569: `$service->delete()` — the service is gone again.
                del self.services[uuid]
                self.envs.pop(uuid, None)
                return failed
        if rules.request_boolean(body.get("instant_deploy"), False):
            self.lifecycle.start(uuid)  # StartService::dispatch($service)
        return Response(201, {"uuid": uuid, "domains": resources.domains_of(service)})

    def update_service(self, *, uuid: str, body: dict[str, Any], **_: Any) -> Response:
        """ServicesController::update_by_uuid (SC:1158-1300): 404 first, then validation,
        save, parse() always, then applyServiceUrls (its errors leave earlier saves)."""
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        problems = rules.merge_errors(
            validation.service_errors(body, create=False),
            rules.unknown_fields(body, validation.SERVICE_UPDATE_FIELDS),
        )
        if problems:
            return validation_failed(problems)
        if "docker_compose_raw" in body:
            text, problem = validation.decode_compose(body["docker_compose_raw"])
            if problem is not None:
                return problem
            parsed, problem = validation.parse_or_422(text, uuid)
            if problem is not None:
                return problem
            service["_compose_text"] = text
            service["docker_compose_raw"] = parsed.raw
        if "name" in body:
            service["name"] = rules.strip_tags(body["name"])
        if "description" in body:
            service["description"] = rules.strip_tags(body["description"])
        if "connect_to_docker_network" in body:
            service["connect_to_docker_network"] = rules.request_boolean(
                body["connect_to_docker_network"], False
            )
        if "is_container_label_escape_enabled" in body:
            service["is_container_label_escape_enabled"] = rules.request_boolean(
                body["is_container_label_escape_enabled"], True
            )
        service["updated_at"] = timestamp()
        self.parse_service(service)  # SC:1261 — on every PATCH
        urls = body.get("urls")
        if isinstance(urls, list):
            failed = self._apply_urls(service, urls, body.get("force_domain_override"))
            if failed is not None:
                return failed
        if rules.request_boolean(body.get("instant_deploy"), False):
            self.lifecycle.start(uuid)  # StartService::dispatch($service)
        return Response(200, {"uuid": uuid, "domains": resources.domains_of(service)})

    def _apply_urls(self, service: dict[str, Any], urls: list[Any], force: Any) -> Response | None:
        def others(app_uuid: str) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
            for other in self.services.values():
                for app in other["applications"]:
                    if app["uuid"] != app_uuid:
                        yield other, app

        def saved(app: dict[str, Any]) -> None:
            app["updated_at"] = timestamp()

        result = domains.apply_service_urls(
            service["applications"],
            urls,
            others,
            rules.request_boolean(force, False),
            saved,
        )
        if result is None:
            return None
        if "errors" in result:
            return validation_failed(result["errors"])
        return Response(
            409,
            {
                "message": domains.CONFLICT_MESSAGE,
                "conflicts": result["conflicts"],
                "warning": result["warning"],
            },
        )

    def parse_service(self, service: dict[str, Any]) -> None:
        """Service::parse() → serviceParser: sub-resources, volumes and env vars."""
        resources.ServiceParse(
            new_id=self._id,
            new_uuid=new_uuid,
            version=VERSION,
            now=timestamp,
            host=f"{SERVER_IP}.sslip.io",
        ).run(service, self.parsed(service), self.envs.setdefault(service["uuid"], {}))

    def _upsert_env(
        self, store: dict[str, dict[str, Any]], key: str, attributes: dict[str, Any]
    ) -> dict[str, Any]:
        env = store.get(key)
        if env is None:
            env = store[key] = envs.new_env(self._id(), new_uuid(), key, VERSION, timestamp())
        envs.fill(env, attributes, timestamp())
        return env

    def delete_service(self, *, uuid: str, query: dict[str, Any], **_: Any) -> Response:
        """SC:1007-1040: DeleteResourceJob queued; flags `$request->boolean(x, true)`."""
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        flags = {
            name: rules.request_boolean(query.get(name), True)
            for name in (
                "delete_configurations",
                "delete_volumes",
                "docker_cleanup",
                "delete_connected_networks",
            )
        }
        if service["_deleting"] is None:
            service["_deleting"] = flags
        self.lifecycle.delete(uuid, flags)
        return Response(200, {"message": "Service deletion request queued."})

    def start_service(self, *, uuid: str, **_: Any) -> Response:
        # SC:2092-2106 action_deploy: `str($service->status)->contains('running')` → 400.
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        if "running" in self.status(service):
            return error(400, "Service is already running.")
        self.lifecycle.start(uuid)
        return Response(200, {"message": "Service starting request queued."})

    def stop_service(self, *, uuid: str, **_: Any) -> Response:
        # SC:2187-2204: status contains `stopped` or `exited` → 400.
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        status = self.status(service)
        if "exited" in status or "stopped" in status:
            return error(400, "Service is already stopped.")
        self.lifecycle.stop(uuid)
        return Response(200, {"message": "Service stopping request queued."})

    def restart_service(self, *, uuid: str, query: dict[str, Any], **_: Any) -> Response:
        # SC:2268-2299: no state check; RestartService → StartService(stopBeforeStart: true).
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        latest = rules.request_boolean(query.get("latest"), False)
        self.lifecycle.start(uuid, stop_before_start=True, pull=latest)
        return Response(200, {"message": "Service restarting request queued."})

    def service_logs(self, *, uuid: str, query: dict[str, Any], **_: Any) -> Response:
        """SC:918-960 logs_by_uuid."""
        sub = query.get("sub_service_name")
        if not sub or sub == "0":  # `if (! $subServiceName)` — PHP's falsy "0" too
            return error(400, "Sub service name is required.")
        service = self.services.get(uuid)
        if service is None:
            return error(404, "Service not found.")
        # The coolify.name label is Str::slug(<compose name>-<uuid>), compared with the raw
        # "{sub}-{uuid}": unknown, never started, removed, or slug-altered names → 404.
        container = self.lifecycle.by_label(uuid, naming.container_name(str(sub), uuid))
        if container is None:
            return error(404, "Container not found.")
        if container["state"] != "running":
            return error(400, "Container is not running.")
        lines = validation.log_lines(query.get("lines"))
        stamps = rules.filter_boolean_or_none(query.get("show_timestamps")) or False
        return Response(200, {"logs": self.lifecycle.logs(container, lines, stamps)})

    # --- env vars ------------------------------------------------------------------------

    def list_envs(self, *, uuid: str, token: Token, **_: Any) -> Response:
        if uuid not in self.services:
            return error(404, "Service not found.")
        store = self.envs[uuid]
        ordered = sorted(store.values(), key=lambda e: e["id"])  # database order
        return Response(200, [envs.public_env(e, token.sensitive) for e in ordered])

    def bulk_envs(self, *, uuid: str, body: dict[str, Any], token: Token, **_: Any) -> Response:
        if uuid not in self.services:
            return error(404, "Service not found.")
        saved, problem = envs.bulk_upsert(
            self.envs[uuid],
            body.get("data"),
            lambda key: envs.new_env(self._id(), new_uuid(), key, VERSION, timestamp()),
            timestamp(),
        )
        if problem is not None:
            return problem
        return Response(201, [envs.public_env(e, token.sensitive) for e in saved])

    def create_env(self, *, uuid: str, body: dict[str, Any], token: Token, **_: Any) -> Response:
        # SC create_env: validated like a bulk item; existing key → 409; is_preview ignored.
        if uuid not in self.services:
            return error(404, "Service not found.")
        problems = rules.validate(body, envs.BULK_RULES, envs.BULK_MESSAGES)
        if problems:
            return validation_failed(problems)
        store = self.envs[uuid]
        if body["key"] in store:
            return error(
                409, "Environment variable already exists. Use PATCH request to update it."
            )
        env = self._upsert_env(
            store, body["key"], {k: v for k, v in body.items() if k != "is_preview"}
        )
        return Response(201, envs.public_env(env, token.sensitive))

    def update_env(self, *, uuid: str, body: dict[str, Any], token: Token, **_: Any) -> Response:
        # SC update_env_by_uuid: matched by key; `value = $request->value` (missing → null).
        if uuid not in self.services:
            return error(404, "Service not found.")
        problems = rules.validate(body, envs.BULK_RULES, envs.BULK_MESSAGES)
        if problems:
            return validation_failed(problems)
        env = self.envs[uuid].get(body["key"])
        if env is None:
            return error(404, "Environment variable not found.")
        envs.fill(env, {**body, "value": body.get("value")}, timestamp())
        return Response(201, envs.public_env(env, token.sensitive))

    def delete_env(self, *, uuid: str, env_uuid: str, **_: Any) -> Response:
        if uuid not in self.services:
            return error(404, "Service not found.")
        store = self.envs[uuid]
        key = next((k for k, e in store.items() if e["uuid"] == env_uuid), None)
        if key is None:
            return error(404, "Environment variable not found.")
        del store[key]
        return Response(200, {"message": "Environment variable deleted."})


# --- helpers ----------------------------------------------------------------------------------


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
        {
            "GET": ("read", S.get_project, False),
            "PATCH": ("write", S.update_project, True),
            "DELETE": ("write", S.delete_project, False),
        },
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
    (
        re.compile(rf"/services/{UUID}/envs"),
        {
            "GET": ("read", S.list_envs, False),
            "POST": ("write", S.create_env, True),
            "PATCH": ("write", S.update_env, True),
        },
    ),
    (re.compile(rf"/services/{UUID}/envs/bulk"), {"PATCH": ("write", S.bulk_envs, True)}),
    (
        re.compile(rf"/services/{UUID}/envs/(?P<env_uuid>[A-Za-z0-9]+)"),
        {"DELETE": ("write", S.delete_env, False)},
    ),
]
