"""Contract tests: every call CoolifyClient makes, and every answer the simulator gives, against
Coolify's own OpenAPI spec (../shared/coolify/openapi.yaml, validated with openapi-core).

Each call goes through an httpx event hook that records the exchange. The request and the
response are then validated against the spec *as published*. Where the spec is wrong about
Coolify (API-NOTES.md: "where the code and the spec disagree, the code is right") the mismatch
must be listed in DEVIATIONS below, with the reason. A listed deviation is checked against a
corrected copy of the spec, and each test names the deviations it expects to need. So a
deviation that is no longer real (the spec was fixed) fails the test too, and so does any
mismatch that nobody has written down.

The spec's server is https://app.coolify.io/api/v1, so every captured call is replayed as
host https://app.coolify.io with its path under /api/v1/... unchanged.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml

from stacks.clients.coolify import CoolifyClient, MissingAbility
from stacks.clients.errors import (
    AlreadyInState,
    AuthenticationFailed,
    BadRequest,
    ClientError,
    Conflict,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from tests.conftest import SIM_TOKEN, no_sleep

pytestmark = pytest.mark.integration

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "coolify" / "openapi.yaml"
if not SPEC_PATH.exists():
    pytest.skip(
        f"Coolify's OpenAPI spec is not at {SPEC_PATH}. The contract tests read it from "
        "../shared/coolify/openapi.yaml, next to the repository; it is never committed here.",
        allow_module_level=True,
    )

from openapi_core import OpenAPI  # noqa: E402  (only once we know there is a spec)
from openapi_core.exceptions import OpenAPIError  # noqa: E402
from openapi_core.testing import MockRequest, MockResponse  # noqa: E402

from stacks.coolify_simulator.api import SERVER_UUID  # noqa: E402

SPEC_HOST = "https://app.coolify.io"
MISSING_UUID = "nosuchuuid00000000000000"

COMPOSE = """\
services:
  web:
    image: nginx:1.27
    environment:
      - SERVICE_URL_WEB_80
      - GREETING=${GREETING:-hello}
    volumes:
      - web-data:/usr/share/nginx/html
  cache:
    image: redis:7
volumes:
  web-data: {}
"""


# --- capture ------------------------------------------------------------------------------


@dataclass
class Exchange:
    request: httpx.Request
    response: httpx.Response | None = None

    @property
    def label(self) -> str:
        status = self.response.status_code if self.response is not None else "no answer"
        return f"{self.request.method} {self.request.url.raw_path.decode()} → {status}"

    def body(self) -> Any:
        try:
            return self.response.json() if self.response is not None else None
        except ValueError:
            return None


@dataclass
class Recorder:
    """httpx event hooks: every request the client sends, and the response it got back."""

    exchanges: list[Exchange] = field(default_factory=list)

    def on_request(self, request: httpx.Request) -> None:
        self.exchanges.append(Exchange(request))

    def on_response(self, response: httpx.Response) -> None:
        response.read()
        for exchange in reversed(self.exchanges):
            if exchange.request is response.request:
                exchange.response = response
                return
        raise AssertionError(f"a response to a request the hook never saw: {response.request}")

    def hooks(self) -> dict[str, list[Callable]]:
        return {"request": [self.on_request], "response": [self.on_response]}


# --- the spec, and the documented places where it is wrong about Coolify ---------------------


@dataclass(frozen=True)
class Deviation:
    name: str
    why: str
    phase: str  # "request" or "response"
    applies: Callable[[Exchange], bool]
    patch: Callable[[dict[str, Any]], None] | None = None
    spec_path: Callable[[str], str] | None = None  # where the spec describes this call


def _operations(spec: dict[str, Any]):
    for item in spec["paths"].values():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield method, operation


def _declare_everywhere(status: str, response: dict[str, Any]) -> Callable[[dict], None]:
    def patch(spec: dict[str, Any]) -> None:
        for _, operation in _operations(spec):
            operation["responses"].setdefault(status, copy.deepcopy(response))

    return patch


def _widen_422_errors(spec: dict[str, Any]) -> None:
    schema = spec["components"]["responses"]["422"]["content"]["application/json"]["schema"]
    schema["properties"]["errors"] = {
        "oneOf": [
            {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]
                },
            },
            {"type": "array", "items": {"type": "string"}},
        ]
    }


def _declare_404_on_create_service(spec: dict[str, Any]) -> None:
    spec["paths"]["/services"]["post"]["responses"]["404"] = {"$ref": "#/components/responses/404"}


def _one_environment_field_on_create_service(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/services"]["post"]["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    schema["required"] = [f for f in schema["required"] if not f.startswith("environment_")]
    schema["anyOf"] = [{"required": ["environment_name"]}, {"required": ["environment_uuid"]}]


def _plain_uuid_on_logs(spec: dict[str, Any]) -> None:
    for parameter in spec["paths"]["/services/{uuid}/logs"]["get"]["parameters"]:
        if parameter["name"] == "uuid":
            parameter["schema"] = {"type": "string"}


def _errors_of(exchange: Exchange) -> Any:
    body = exchange.body()
    return body.get("errors") if isinstance(body, dict) else None


def _status(exchange: Exchange) -> int | None:
    return exchange.response.status_code if exchange.response is not None else None


DEVIATIONS = [
    Deviation(
        "undeclared-403",
        "The spec lists no 403 on the project/server/service operations, but every /api/v1 "
        "route answers 403 {message: 'Missing required permissions: <ability>'} when the token "
        "lacks the ability (API-NOTES §0).",
        "response",
        lambda ex: _status(ex) == 403,
        _declare_everywhere(
            "403",
            {
                "description": "Missing required permissions.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {"message": {"type": "string"}},
                        }
                    }
                },
            },
        ),
    ),
    Deviation(
        "undeclared-429",
        "The spec declares its 429 response (with Retry-After) only on a few cloud-server "
        "operations, but throttle:api covers every /api/v1 route (API-NOTES §0). Its message "
        "example 'Rate limit exceeded. Please try again later.' is also wrong: Laravel says "
        "'Too Many Attempts.' (examples are not validated; the test asserts the real text).",
        "response",
        lambda ex: _status(ex) == 429,
        _declare_everywhere("429", {"$ref": "#/components/responses/429"}),
    ),
    Deviation(
        "undeclared-404-on-create-service",
        "POST /services declares no 404, but an unknown project, server or environment "
        "answers 404 {message: 'Project not found.'} etc. (API-NOTES §4).",
        "response",
        lambda ex: (
            ex.request.method == "POST"
            and ex.request.url.path == "/api/v1/services"
            and _status(ex) == 404
        ),
        _declare_404_on_create_service,
    ),
    Deviation(
        "422-string-field-error",
        "The spec says every value under `errors` is a list of strings. Coolify's hand-written "
        "422s put a plain string there, e.g. errors.docker_compose_raw = 'The "
        "docker_compose_raw should be base64 encoded.' (API-NOTES §0, §4).",
        "response",
        lambda ex: (
            _status(ex) == 422
            and isinstance(_errors_of(ex), dict)
            and any(isinstance(v, str) for v in _errors_of(ex).values())
        ),
        _widen_422_errors,
    ),
    Deviation(
        "422-errors-list",
        "The spec says `errors` is an object. A bad or unknown `urls` entry on POST/PATCH "
        "/services answers 422 with `errors` as a list of strings, e.g. ['Invalid URL: x'] "
        "or [\"Service container with 'x' not found.\"] (applyServiceUrls; API-NOTES §4).",
        "response",
        lambda ex: _status(ex) == 422 and isinstance(_errors_of(ex), list),
        _widen_422_errors,
    ),
    Deviation(
        "create-service-one-environment-field",
        "POST /services marks both environment_name and environment_uuid required, but "
        "Coolify needs only one (the name is tried first, then the uuid; API-NOTES §4). The "
        "client sends only environment_name, which saves a project lookup per deploy.",
        "request",
        lambda ex: ex.request.method == "POST" and ex.request.url.path == "/api/v1/services",
        _one_environment_field_on_create_service,
    ),
    Deviation(
        "logs-uuid-not-rfc4122",
        "GET /services/{uuid}/logs declares its path uuid as `format: uuid`, but Coolify's "
        "uuids are 24 lowercase alphanumerics (Str::random), never RFC 4122 (API-NOTES §0).",
        "request",
        lambda ex: (
            ex.request.url.path.startswith("/api/v1/services/")
            and ex.request.url.path.endswith("/logs")
        ),
        _plain_uuid_on_logs,
    ),
    Deviation(
        "health-outside-api-v1",
        "The client asks GET /api/health, which is outside the spec's server URL (/api/v1), "
        "so the spec cannot describe it. It is the same endpoint as the spec's /health "
        "(GET /api/v1/health, an alias since beta.411; API-NOTES §1). The client keeps "
        "/api/health because it works on every version, so the call is checked as "
        "/api/v1/health; test_healthy_call also validates a real call to /api/v1/health.",
        "request",
        lambda ex: ex.request.url.path == "/api/health",
        spec_path=lambda path: "/api/v1/health",
    ),
]

# Spec errors that openapi-core cannot see (it does not validate examples), written down so
# nobody "fixes" the simulator to match the spec:
# - GET /version: the spec's 200 is text/html with example "v4.0.0". The content type is right
#   (plain text, not JSON, although we send Accept: application/json); the example is not:
#   Coolify answers "4.3.11" with no "v" (API-NOTES §1). test_version_call asserts the real text.
# - 422: the spec's message example is "Validation error."; Coolify says "Validation failed."
#   (API-NOTES §0). The 422 tests assert the real text.
# - 409 on POST/PATCH /services: the conflict's `domain` example is a bare "example.com", but
#   Coolify reports the stored fqdn with its scheme ("https://web.contract.test"), and
#   `resource_uuid` ("abc123-def456") is the uuid of the service application holding the
#   domain, not of its service (domains.php:206-321). test_409_domain_conflict... asserts both.
# - The 400 component is described as "Invalid token."; Coolify uses 400 for "Service is
#   already running.", "Project has resources, ..." and "Bulk data is required." too. Only the
#   description is wrong: the schema ({message: string}) fits.


@cache
def original_spec() -> OpenAPI:
    return OpenAPI.from_dict(_load_spec_dict())


@cache
def corrected_spec() -> OpenAPI:
    spec = _load_spec_dict()
    for deviation in DEVIATIONS:
        if deviation.patch is not None:
            deviation.patch(spec)
    return OpenAPI.from_dict(spec)


def _load_spec_dict() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)


def _mock_request(exchange: Exchange, path: str) -> MockRequest:
    request = exchange.request
    return MockRequest(
        SPEC_HOST,
        request.method.lower(),
        path,
        args=dict(request.url.params.multi_items()),
        headers=dict(request.headers.items()),
        data=request.content or None,
        content_type=request.headers.get("content-type", ""),
    )


def _mock_response(exchange: Exchange) -> MockResponse:
    response = exchange.response
    assert response is not None
    return MockResponse(
        response.content,
        status_code=response.status_code,
        headers=dict(response.headers.items()),
        content_type=response.headers.get("content-type", ""),
    )


def _describe(error: BaseException) -> str:
    """openapi-core's error and, from the chain below it, each jsonschema error with its path."""
    lines = [f"{type(error).__name__}: {error}"]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for schema_error in getattr(current, "schema_errors", None) or ():
            where = getattr(schema_error, "json_path", "$")
            lines.append(f"  at {where}: {schema_error.message}")
        current = current.__cause__ or current.__context__
    return "\n".join(lines)


def _error_of(validate: Callable[..., Any], *args: Any) -> OpenAPIError | None:
    try:
        validate(*args)
    except OpenAPIError as error:
        return error
    return None


def _deviation_for(phase: str, exchange: Exchange) -> Deviation | None:
    matching = [d for d in DEVIATIONS if d.phase == phase and d.applies(exchange)]
    assert len(matching) <= 1, f"{exchange.label}: ambiguous deviations {matching}"
    return matching[0] if matching else None


def check_exchange(exchange: Exchange) -> set[str]:
    """Validate one call and its answer; return the documented deviations it needed."""
    used: set[str] = set()
    original, corrected = original_spec(), corrected_spec()
    path = exchange.request.url.path
    request = _mock_request(exchange, path)
    problem = _error_of(original.validate_request, request)
    if problem is not None:
        deviation = _deviation_for("request", exchange)
        if deviation is None:
            pytest.fail(
                f"contract: the request {exchange.label} does not match Coolify's spec, and "
                f"no documented deviation covers it:\n{_describe(problem)}",
                pytrace=False,
            )
        if deviation.spec_path is not None:
            request = _mock_request(exchange, deviation.spec_path(path))
        still = _error_of(corrected.validate_request, request)
        if still is not None:
            pytest.fail(
                f"contract: the request {exchange.label} does not match the spec even with "
                f"the documented deviation {deviation.name!r}:\n{_describe(still)}",
                pytrace=False,
            )
        used.add(deviation.name)
    if exchange.response is None:
        return used
    response = _mock_response(exchange)
    problem = _error_of(original.validate_response, request, response)
    if problem is not None:
        deviation = _deviation_for("response", exchange)
        if deviation is None:
            pytest.fail(
                f"contract: the response to {exchange.label} does not match Coolify's spec, "
                f"and no documented deviation covers it:\n{_describe(problem)}\n"
                f"body: {exchange.response.text[:500]}",
                pytrace=False,
            )
        still = _error_of(corrected.validate_response, request, response)
        if still is not None:
            pytest.fail(
                f"contract: the response to {exchange.label} does not match the spec even "
                f"with the documented deviation {deviation.name!r}:\n{_describe(still)}\n"
                f"body: {exchange.response.text[:500]}",
                pytrace=False,
            )
        used.add(deviation.name)
    return used


def check_all(recorder: Recorder, *, expect_deviations: set[str] = frozenset()) -> list[Exchange]:
    """Validate every captured exchange; the deviations needed must be exactly the expected."""
    assert recorder.exchanges, "the client sent nothing"
    used: set[str] = set()
    for exchange in recorder.exchanges:
        # Not in the spec, but without it Coolify answers framework errors in HTML (API-NOTES §0).
        assert exchange.request.headers.get("accept") == "application/json", exchange.label
        used |= check_exchange(exchange)
    assert used == set(expect_deviations), (
        f"documented deviations needed: {sorted(used)}, expected: {sorted(expect_deviations)} "
        "(a deviation no longer needed means the spec was fixed: remove it)"
    )
    return recorder.exchanges


# --- fixtures -----------------------------------------------------------------------------


def _client(url: str, token: str = SIM_TOKEN, recorder: Recorder | None = None) -> CoolifyClient:
    return CoolifyClient(
        url,
        token,
        timeout=5,
        attempts=1,
        sleep=no_sleep,
        event_hooks=recorder.hooks() if recorder else None,
    )


# Coolify 4.3.11 says `running:unknown` for a stack whose containers all run without a Docker
# healthcheck (ContainerStatusAggregator): nginx and redis in COMPOSE have none.
RUNNING = "running:unknown"


def _wait_for_status(client: CoolifyClient, uuid: str, wanted: str, timeout: float = 5.0) -> None:
    """Poll GET /services/{uuid} until `wanted`. Statuses change only at Coolify's periodic
    container-status checks, after a queued job; 0.05 s between reads keeps even a full
    timeout (≤ 100 reads) under the 200/min rate limit the fixture's user shares."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while (status := client.get_service(uuid)["status"]) != wanted:
        if not seen or seen[-1] != status:
            seen.append(status)
        assert time.monotonic() < deadline, f"service {uuid} never reached {wanted}: {seen}"
        time.sleep(0.05)


def _start_and_wait(world: SimpleNamespace) -> None:
    """Start the world's service (uncaptured) and wait until its containers run."""
    world.setup.start_service(world.service_uuid)
    _wait_for_status(world.setup, world.service_uuid, RUNNING)


@pytest.fixture
def world(coolify_sim):
    """A project with one service (web on web.contract.test), made without capturing."""
    setup = _client(coolify_sim.url)
    project_uuid = setup.create_project("contract-project", "made by the contract tests")
    created = setup.create_service(
        project_uuid=project_uuid,
        server_uuid=SERVER_UUID,
        environment_name="production",
        name="contract-service",
        description="",
        compose=COMPOSE,
        urls=[{"name": "web", "url": "https://web.contract.test"}],
    )
    yield SimpleNamespace(
        sim=coolify_sim,
        setup=setup,
        project_name="contract-project",
        project_uuid=project_uuid,
        service_uuid=created["uuid"],
    )
    setup.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(coolify_sim, recorder):
    with _client(coolify_sim.url, recorder=recorder) as client:
        yield client


def _new_service_args(world: SimpleNamespace, host: str, compose: str = COMPOSE) -> dict:
    return {
        "project_uuid": world.project_uuid,
        "server_uuid": SERVER_UUID,
        "environment_name": "production",
        "name": f"service-{host.split('.')[0]}",
        "description": "contract",
        "compose": compose,
        "urls": [{"name": "web", "url": f"https://{host}"}],
    }


# --- every client method, happy path --------------------------------------------------------


def call_version(client, world):
    # The spec's example is "v4.0.0"; Coolify answers "4.3.11" (see the notes above).
    assert client.version() == "4.3.11"


def call_version_tuple(client, world):
    assert client.version_tuple() == (4, 3, 11, 10**6)


def call_require_version(client, world):
    client.require_version((4, 0, 0, 461), "service domains")  # passes: 4.3.11 is newer


def call_healthy(client, world):
    assert client.healthy() is True


def call_list_projects(client, world):
    assert [p["uuid"] for p in client.list_projects()] == [world.project_uuid]


def call_find_project(client, world):
    assert client.find_project(world.project_name)["uuid"] == world.project_uuid
    assert client.find_project("no-such-project") is None


def call_get_project(client, world):
    project = client.get_project(world.project_uuid)
    assert [e["name"] for e in project["environments"]] == ["production"]


def call_create_project(client, world):
    assert len(client.create_project("contract-other", "second")) == 24


def call_delete_project(client, world):
    empty = world.setup.create_project("contract-empty")
    client.delete_project(empty)


def call_list_servers(client, world):
    assert [s["uuid"] for s in client.list_servers()] == [SERVER_UUID]


def call_get_server(client, world):
    assert client.get_server(SERVER_UUID)["settings"]["is_reachable"] is True


def call_server_resources(client, world):
    [resource] = client.server_resources(SERVER_UUID)
    assert resource["uuid"] == world.service_uuid and resource["type"] == "service"


def call_list_services(client, world):
    assert [s["uuid"] for s in client.list_services()] == [world.service_uuid]


def call_get_service(client, world):
    assert client.get_service(world.service_uuid)["status"] == "exited"


def call_service_exists(client, world):
    assert client.service_exists(world.service_uuid) is True
    assert client.service_exists(MISSING_UUID) is False  # a declared 404


def call_create_service(client, world):
    created = client.create_service(**_new_service_args(world, "other.contract.test"))
    assert created["domains"] == ["https://other.contract.test"]


def call_update_service(client, world):
    updated = client.update_service(
        world.service_uuid,
        compose=COMPOSE,
        urls=[{"name": "web", "url": "https://renamed.contract.test"}],
    )
    assert updated == {"uuid": world.service_uuid, "domains": ["https://renamed.contract.test"]}


def call_set_service_urls(client, world):
    # Only `urls`: the compose stays; an empty url takes the application's domain off.
    updated = client.set_service_urls(world.service_uuid, [{"name": "web", "url": ""}])
    assert updated == {"uuid": world.service_uuid, "domains": []}


def call_delete_service(client, world):
    client.delete_service(world.service_uuid, delete_volumes=False)


def call_start_service(client, world):
    client.start_service(world.service_uuid)


def call_stop_service(client, world):
    _start_and_wait(world)  # a stop of an exited service is a 400 "Service is already stopped."
    client.stop_service(world.service_uuid)


def call_restart_service(client, world):
    client.restart_service(world.service_uuid)


def call_service_logs(client, world):
    # Logs come from `docker logs` of the running container: before the first start there is
    # none (404 "Container not found.", see test_404_logs_before_the_containers_exist...).
    _start_and_wait(world)
    assert "web: Listening on 0.0.0.0" in client.service_logs(world.service_uuid, "web")


def call_list_service_envs(client, world):
    keys = {e["key"] for e in client.list_service_envs(world.service_uuid)}
    assert "GREETING" in keys


def call_upsert_service_envs(client, world):
    client.upsert_service_envs(world.service_uuid, {"GREETING": "hi", "API_KEY": "s3cr3t"})


HAPPY_CALLS: dict[str, tuple[Callable[..., None], set[str]]] = {
    "version": (call_version, set()),
    "version_tuple": (call_version_tuple, set()),
    "require_version": (call_require_version, set()),
    "healthy": (call_healthy, {"health-outside-api-v1"}),
    "list_projects": (call_list_projects, set()),
    "find_project": (call_find_project, set()),
    "get_project": (call_get_project, set()),
    "create_project": (call_create_project, set()),
    "delete_project": (call_delete_project, set()),
    "list_servers": (call_list_servers, set()),
    "get_server": (call_get_server, set()),
    "server_resources": (call_server_resources, set()),
    "list_services": (call_list_services, set()),
    "get_service": (call_get_service, set()),
    "service_exists": (call_service_exists, set()),
    "create_service": (call_create_service, {"create-service-one-environment-field"}),
    "update_service": (call_update_service, set()),
    "set_service_urls": (call_set_service_urls, set()),
    "delete_service": (call_delete_service, set()),
    "start_service": (call_start_service, set()),
    "stop_service": (call_stop_service, set()),
    "restart_service": (call_restart_service, set()),
    "service_logs": (call_service_logs, {"logs-uuid-not-rfc4122"}),
    "list_service_envs": (call_list_service_envs, set()),
    "upsert_service_envs": (call_upsert_service_envs, set()),
}


def test_every_client_method_has_a_contract_test():
    helpers = {"auth_headers", "error_class"}  # hooks of the HTTP base, not API calls
    methods = {
        name
        for name, value in vars(CoolifyClient).items()
        if callable(value) and not name.startswith("_") and name not in helpers
    }
    assert methods == set(HAPPY_CALLS), (
        f"client methods without a contract test: {sorted(methods - set(HAPPY_CALLS))}; "
        f"tests of methods that are gone: {sorted(set(HAPPY_CALLS) - methods)}"
    )


@pytest.mark.parametrize("name", sorted(HAPPY_CALLS))
def test_client_call_matches_the_spec(name, client, recorder, world):
    drive, deviations = HAPPY_CALLS[name]

    drive(client, world)

    exchanges = check_all(recorder, expect_deviations=deviations)
    assert all(ex.response is not None for ex in exchanges)
    assert any(200 <= ex.response.status_code < 300 for ex in exchanges)


def test_the_spec_health_path_gives_the_same_answer(client, recorder):
    """/api/v1/health is what the spec describes; it must agree with /api/health."""
    assert client.healthy() is True
    response = client.request("GET", "/api/v1/health", idempotent=True)

    assert response.text == "OK"
    assert response.headers["content-type"].startswith("text/html")
    check_all(recorder, expect_deviations={"health-outside-api-v1"})


# --- error responses ----------------------------------------------------------------------


def _raises(kind: type[ClientError], call: Callable[[], Any]) -> ClientError:
    with pytest.raises(kind) as caught:
        call()
    return caught.value


def test_401_unauthenticated_matches_the_spec(coolify_sim, recorder):
    with _client(coolify_sim.url, token="not-a-token", recorder=recorder) as client:
        error = _raises(AuthenticationFailed, client.list_services)

    assert error.status == 401 and error.message == "Unauthenticated."
    check_all(recorder)


def test_403_missing_ability_is_not_in_the_spec_but_documented(coolify_sim, recorder, world):
    coolify_sim.api.add_token("read-only-token", {"read"}, user="reader")
    with _client(coolify_sim.url, token="read-only-token", recorder=recorder) as client:
        assert client.get_service(world.service_uuid)["uuid"] == world.service_uuid
        error = _raises(MissingAbility, lambda: client.start_service(world.service_uuid))

    assert error.ability == "deploy"
    assert error.message == "Missing required permissions: deploy"
    check_all(recorder, expect_deviations={"undeclared-403"})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.get_service(MISSING_UUID), "Service not found."),
        (lambda c: c.get_project(MISSING_UUID), "Project not found."),
        (lambda c: c.get_server(MISSING_UUID), "Server not found."),
        (lambda c: c.start_service(MISSING_UUID), "Service not found."),
        (lambda c: c.delete_service(MISSING_UUID), "Service not found."),
        (lambda c: c.list_service_envs(MISSING_UUID), "Service not found."),
    ],
    ids=["get_service", "get_project", "get_server", "start", "delete_service", "envs"],
)
def test_404_not_found_matches_the_spec(call, message, client, recorder):
    error = _raises(NotFound, lambda: call(client))

    assert error.message == message
    check_all(recorder)


def test_404_logs_before_the_containers_exist_matches_the_spec(client, recorder, world):
    """A created service has no containers until its first start: Coolify finds none by the
    coolify.name label and answers 404 (SC:918-960), a status the spec declares."""
    error = _raises(NotFound, lambda: client.service_logs(world.service_uuid, "web"))

    assert error.message == "Container not found."
    check_all(recorder, expect_deviations={"logs-uuid-not-rfc4122"})


def test_404_on_create_service_is_not_in_the_spec_but_documented(client, recorder, world):
    args = {**_new_service_args(world, "x.contract.test"), "project_uuid": MISSING_UUID}

    error = _raises(NotFound, lambda: client.create_service(**args))

    assert error.message == "Project not found."
    check_all(
        recorder,
        expect_deviations={
            "undeclared-404-on-create-service",
            "create-service-one-environment-field",
        },
    )


def test_409_domain_conflict_matches_the_spec(client, recorder, world):
    [web] = world.setup.get_service(world.service_uuid)["applications"]  # uncaptured

    error = _raises(
        Conflict, lambda: client.create_service(**_new_service_args(world, "web.contract.test"))
    )

    assert error.message == "Domain conflicts detected. Use force_domain_override=true to proceed."
    [exchange] = check_all(recorder, expect_deviations={"create-service-one-environment-field"})
    [conflict] = exchange.body()["conflicts"]
    # The stored fqdn as it is (scheme included, not the spec example's bare "example.com"),
    # and the uuid of the service *application* that holds it, not of its service.
    assert conflict["domain"] == "https://web.contract.test"
    assert web["name"] == "web" and web["fqdn"] == "https://web.contract.test"
    assert conflict["resource_uuid"] == web["uuid"] != world.service_uuid
    assert conflict["resource_type"] == "service"
    assert conflict["resource_name"] == "contract-service"
    # The service is deleted again when applyServiceUrls fails (SC:554-569).
    assert [s["uuid"] for s in world.setup.list_services()] == [world.service_uuid]


def test_409_on_update_service_matches_the_spec(client, recorder, world):
    other = world.setup.create_service(**_new_service_args(world, "b.contract.test"))

    _raises(
        Conflict,
        lambda: client.update_service(
            other["uuid"],
            compose=COMPOSE,
            urls=[{"name": "web", "url": "https://web.contract.test"}],
        ),
    )

    check_all(recorder)


def test_422_with_field_lists_matches_the_spec(client, recorder):
    error = _raises(ValidationFailed, lambda: client.create_project("x"))

    # The spec's example message is "Validation error."; Coolify says "Validation failed."
    assert error.message == "Validation failed."
    # ValidationPatterns::nameMessages()'s own text, not Laravel's default min message.
    assert error.field_errors == {"name": ["The name must be at least 3 characters."]}
    [exchange] = check_all(recorder)
    assert exchange.body()["errors"] == {"name": ["The name must be at least 3 characters."]}


def test_422_with_a_string_field_error_is_documented(client, recorder, world):
    no_services = "version: '3.8'\nvolumes:\n  data: {}\n"

    error = _raises(
        ValidationFailed,
        lambda: client.create_service(**_new_service_args(world, "y.contract.test", no_services)),
    )

    assert error.message == "Validation failed."
    assert "docker_compose_raw" in error.field_errors
    [exchange] = check_all(
        recorder,
        expect_deviations={"422-string-field-error", "create-service-one-environment-field"},
    )
    assert isinstance(exchange.body()["errors"]["docker_compose_raw"], str)


def test_422_with_an_errors_list_is_documented(client, recorder, world):
    args = {
        **_new_service_args(world, "z.contract.test"),
        "urls": [{"name": "not-in-compose", "url": "https://z.contract.test"}],
    }

    error = _raises(ValidationFailed, lambda: client.create_service(**args))

    assert error.field_errors == {"_": ["Service container with 'not-in-compose' not found."]}
    [exchange] = check_all(
        recorder, expect_deviations={"422-errors-list", "create-service-one-environment-field"}
    )
    assert exchange.body() == {
        "message": "Validation failed.",
        "errors": ["Service container with 'not-in-compose' not found."],
    }


def test_400_already_running_matches_the_spec(client, recorder, world):
    _start_and_wait(world)

    error = _raises(AlreadyInState, lambda: client.start_service(world.service_uuid))

    assert error.message == "Service is already running."
    check_all(recorder)


def test_400_project_with_resources_matches_the_spec(client, recorder, world):
    error = _raises(BadRequest, lambda: client.delete_project(world.project_uuid))

    assert error.message == "Project has resources, so it cannot be deleted."
    check_all(recorder)


def test_400_bulk_envs_without_data_matches_the_spec(client, recorder, world):
    error = _raises(BadRequest, lambda: client.upsert_service_envs(world.service_uuid, {}))

    assert error.message == "Bulk data is required."
    # {"data": []} satisfies the spec's request schema (an array, no minItems); Coolify refuses.
    check_all(recorder)


def test_429_rate_limit_is_not_in_the_spec_but_documented(coolify_sim, recorder):
    coolify_sim.api.add_token("limited-token", {"root"}, user="limited-user")
    coolify_sim.api.rate_limit_per_minute = 2
    with _client(coolify_sim.url, token="limited-token", recorder=recorder) as client:
        client.list_projects()
        client.list_servers()
        error = _raises(RateLimited, client.list_services)

    assert error.message == "Too Many Attempts."  # the spec's example text is not Coolify's
    assert error.retry_after is not None and error.retry_after > 0
    exchanges = check_all(recorder, expect_deviations={"undeclared-429"})
    assert exchanges[-1].response.headers["Retry-After"].isdigit()


# --- the checker itself -------------------------------------------------------------------


def test_an_undocumented_mismatch_fails_naming_the_call_and_the_field():
    """A response with a wrong type must fail loudly, with the call and the bad field."""
    request = httpx.Request(
        "GET",
        "http://127.0.0.1:1/api/v1/services/abc",
        headers={"Authorization": "Bearer t", "Accept": "application/json"},
    )
    response = httpx.Response(
        200,
        content=json.dumps({"uuid": 7, "name": "svc"}).encode(),
        headers={"Content-Type": "application/json"},
        request=request,
    )

    with pytest.raises(pytest.fail.Exception) as failed:
        check_exchange(Exchange(request, response))

    message = str(failed.value)
    assert "GET /api/v1/services/abc → 200" in message
    assert "7 is not of type 'string'" in message
    assert "uuid" in message


def test_a_request_without_the_bearer_token_breaks_the_contract():
    request = httpx.Request("GET", "http://127.0.0.1:1/api/v1/services")

    with pytest.raises(pytest.fail.Exception) as failed:
        check_exchange(Exchange(request))

    assert "GET /api/v1/services" in str(failed.value)
    assert "Security" in str(failed.value)


def test_every_deviation_says_why_and_is_exercised():
    expected = set().union(*(d for _, d in HAPPY_CALLS.values()))
    expected |= {
        "undeclared-403",
        "undeclared-429",
        "undeclared-404-on-create-service",
        "422-string-field-error",
        "422-errors-list",
        "create-service-one-environment-field",
    }
    assert {d.name for d in DEVIATIONS} == expected
    assert all(len(d.why) > 40 for d in DEVIATIONS)
