"""CoolifyClient: headers, typed errors, retries and backoff, what it sends, and token hygiene.

Two kinds of remote: the Coolify simulator on loopback (real sockets, real faults: resets,
timeouts, 5xx) and httpx.MockTransport where a test needs an exact status or header and wants
to assert the exact request. `sleep` is always a recorder, so backoff costs no time.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from stacks.clients import http as http_module
from stacks.clients.coolify import CoolifyClient, MissingAbility, encode_compose
from stacks.clients.errors import (
    AlreadyInState,
    AuthenticationFailed,
    BadRequest,
    ClientError,
    Conflict,
    ConnectionFailed,
    NotConnected,
    NotFound,
    PermissionDenied,
    RateLimited,
    RemoteTimeout,
    ServerError,
    ValidationFailed,
)
from stacks.clients.http import BACKOFF_BASE, BACKOFF_MAX, RETRY_AFTER_MAX
from stacks.coolify_simulator.api import SERVER_UUID
from stacks.coolify_simulator.server import Fault

SECRET = "42|cfadmin-SECRET-token-0123456789"  # Sanctum's <id>|<secret> shape
BASE = "https://coolify.example.test"

COMPOSE = """\
services:
  web:
    image: nginx:1.27  # a comment, and a line long enough that encodebytes() would wrap it
    environment:
      - SERVICE_URL_WEB_80
      - GREETING=${GREETING:-hellø wörld}
    volumes:
      - web-data:/usr/share/nginx/html
volumes:
  web-data: {}
"""


class Sleeps(list):
    """A fake sleep that records each delay."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


# --- a scripted remote (httpx.MockTransport) ------------------------------------------------


class Script:
    """Answers requests in order from a list of responses or exceptions; records requests."""

    def __init__(self, *steps: httpx.Response | Exception | Callable[[httpx.Request], Any]):
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.steps, f"unexpected extra request: {request.method} {request.url}"
        step = self.steps.pop(0)
        if callable(step) and not isinstance(step, httpx.Response):
            step = step(request)
        if isinstance(step, Exception):
            raise step
        return step

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def mock_client(script: Script, sleeps: Sleeps | None = None, **kwargs: Any) -> CoolifyClient:
    kwargs.setdefault("attempts", 4)
    return CoolifyClient(
        BASE,
        SECRET,
        transport=httpx.MockTransport(script),
        sleep=sleeps if sleeps is not None else Sleeps(),
        **kwargs,
    )


CREATE_ARGS = {
    "project_uuid": "p" * 24,
    "server_uuid": SERVER_UUID,
    "environment_name": "production",
    "name": "customer-123-main",
    "description": "a stack",
    "compose": COMPOSE,
    "urls": [{"name": "web", "url": "https://web.example.test"}],
}


# --- the simulator --------------------------------------------------------------------------


@pytest.fixture
def sim_client(coolify_sim, sleeps):
    coolify_sim.api.add_token(SECRET, {"root"})
    client = CoolifyClient(coolify_sim.url, SECRET, timeout=2, attempts=3, sleep=sleeps)
    yield client
    client.close()


@pytest.fixture
def project(sim_client) -> str:
    return sim_client.create_project("client-tests")


def sim_create_args(project: str, host: str = "web.sim.test") -> dict[str, Any]:
    return {
        **CREATE_ARGS,
        "project_uuid": project,
        "urls": [{"name": "web", "url": f"https://{host}"}],
    }


@pytest.fixture
def service(sim_client, project) -> str:
    return sim_client.create_service(**sim_create_args(project))["uuid"]


def wait_for(
    client: CoolifyClient, uuid: str, done: Callable[[str], bool], timeout: float = 5.0
) -> str:
    """Poll the service's status until `done(status)`; return it. Coolify queues lifecycle
    jobs and stores statuses only at its periodic container checks, so nothing is immediate.
    0.05 s between reads keeps even a full timeout (≤ 100 reads) under the 200/min limit."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while not done(status := client.get_service(uuid)["status"]):
        if not seen or seen[-1] != status:
            seen.append(status)
        assert time.monotonic() < deadline, f"service {uuid}: statuses seen {seen}"
        time.sleep(0.05)
    return status


# --- what every request carries -----------------------------------------------------------


def canned(request: httpx.Request) -> httpx.Response:
    """Minimal valid answers for every client method."""
    path, method = request.url.path, request.method
    if path in ("/api/health", "/api/v1/version"):
        return httpx.Response(200, text="OK" if "health" in path else "4.3.11")
    if method == "GET" and re.search(r"/(projects|servers|services|resources|envs)$", path):
        return answer(200, [])
    if method == "POST" and path in ("/api/v1/projects", "/api/v1/services"):
        return answer(201, {"uuid": "u" * 24, "domains": []})
    if path.endswith("/envs/bulk"):
        return answer(201, [])
    return answer(200, {"uuid": "u" * 24, "logs": "", "message": "ok"})


ALL_CALLS: dict[str, Callable[[CoolifyClient], Any]] = {
    "version": lambda c: c.version(),
    "version_tuple": lambda c: c.version_tuple(),
    "require_version": lambda c: c.require_version((0,), "anything"),
    "healthy": lambda c: c.healthy(),
    "list_projects": lambda c: c.list_projects(),
    "find_project": lambda c: c.find_project("x"),
    "get_project": lambda c: c.get_project("p" * 24),
    "create_project": lambda c: c.create_project("abc", "d"),
    "delete_project": lambda c: c.delete_project("p" * 24),
    "list_servers": lambda c: c.list_servers(),
    "get_server": lambda c: c.get_server(SERVER_UUID),
    "server_resources": lambda c: c.server_resources(SERVER_UUID),
    "list_services": lambda c: c.list_services(),
    "get_service": lambda c: c.get_service("s" * 24),
    "service_exists": lambda c: c.service_exists("s" * 24),
    "create_service": lambda c: c.create_service(**CREATE_ARGS),
    "update_service": lambda c: c.update_service("s" * 24, compose=COMPOSE, urls=[]),
    "set_service_urls": lambda c: c.set_service_urls("s" * 24, [{"name": "web", "url": ""}]),
    "delete_service": lambda c: c.delete_service("s" * 24),
    "start_service": lambda c: c.start_service("s" * 24),
    "stop_service": lambda c: c.stop_service("s" * 24),
    "restart_service": lambda c: c.restart_service("s" * 24),
    "service_logs": lambda c: c.service_logs("s" * 24, "web"),
    "list_service_envs": lambda c: c.list_service_envs("s" * 24),
    "upsert_service_envs": lambda c: c.upsert_service_envs("s" * 24, {"A": "1"}),
}


def test_all_client_methods_are_covered_here():
    methods = {
        n
        for n, v in vars(CoolifyClient).items()
        if callable(v) and not n.startswith("_") and n not in {"auth_headers", "error_class"}
    }
    assert methods == set(ALL_CALLS)


@pytest.mark.parametrize("name", sorted(ALL_CALLS))
def test_every_request_sends_json_accept_and_the_bearer_token(name):
    script = Script(*[canned] * 2)
    with mock_client(script) as client:
        ALL_CALLS[name](client)

    assert script.requests
    for request in script.requests:
        assert request.headers.get_list("accept") == ["application/json"]
        assert request.headers.get_list("authorization") == [f"Bearer {SECRET}"]
        if request.content:
            assert request.headers["content-type"] == "application/json"
        assert request.url.host == "coolify.example.test"


def test_lifecycle_calls_are_posts_with_explicit_flags():
    script = Script(canned, canned, canned)
    with mock_client(script) as client:
        client.start_service("s" * 24)
        client.stop_service("s" * 24)
        client.restart_service("s" * 24)

    assert [(r.method, r.url.path, dict(r.url.params)) for r in script.requests] == [
        ("POST", f"/api/v1/services/{'s' * 24}/start", {}),
        ("POST", f"/api/v1/services/{'s' * 24}/stop", {"docker_cleanup": "true"}),
        ("POST", f"/api/v1/services/{'s' * 24}/restart", {"latest": "false"}),
    ]


def test_the_simulator_sees_the_bearer_token(coolify_sim, sleeps):
    """The simulator accepts the client's header: a wrong scheme would be a 401 there."""
    with CoolifyClient(coolify_sim.url, "sim-root-token", sleep=sleeps) as client:
        assert client.version() == "4.3.11"
        assert client.healthy() is True


# --- typed errors keep Coolify's message --------------------------------------------------


def test_401_is_authentication_failed(coolify_sim, sleeps):
    client = CoolifyClient(coolify_sim.url, "wrong-token", sleep=sleeps)
    with client, pytest.raises(AuthenticationFailed) as caught:
        client.list_services()

    assert caught.value.status == 401
    assert caught.value.message == "Unauthenticated."
    assert sleeps == []  # not retried


def test_403_missing_ability_names_the_ability(coolify_sim, service, sleeps):
    coolify_sim.api.add_token("read-write", {"read", "write"})
    client = CoolifyClient(coolify_sim.url, "read-write", sleep=sleeps)
    with client, pytest.raises(MissingAbility) as caught:
        client.start_service(service)

    assert isinstance(caught.value, PermissionDenied)
    assert caught.value.status == 403
    assert caught.value.ability == "deploy"
    assert caught.value.message == "Missing required permissions: deploy"


def test_403_for_another_reason_is_a_plain_permission_denied(sleeps):
    script = Script(answer(403, {"success": True, "message": "API is disabled."}))
    with mock_client(script, sleeps) as client, pytest.raises(PermissionDenied) as caught:
        client.list_projects()

    assert type(caught.value) is PermissionDenied
    assert caught.value.message == "API is disabled."


def test_404_is_not_found(sim_client):
    with pytest.raises(NotFound) as caught:
        sim_client.get_service("nosuchservice00000000000")

    assert caught.value.message == "Service not found."
    assert sim_client.service_exists("nosuchservice00000000000") is False


def test_409_is_conflict(sim_client, project, service):
    with pytest.raises(Conflict) as caught:
        sim_client.create_service(**sim_create_args(project))

    assert caught.value.status == 409
    assert caught.value.message == (
        "Domain conflicts detected. Use force_domain_override=true to proceed."
    )


def test_422_is_validation_failed_with_field_errors(sim_client):
    with pytest.raises(ValidationFailed) as caught:
        sim_client.create_project("x")

    assert caught.value.message == "Validation failed."
    # ValidationPatterns::nameMessages(): Coolify's own min text, not Laravel's default.
    assert caught.value.field_errors == {"name": ["The name must be at least 3 characters."]}
    assert "name: The name must be at least 3 characters." in str(caught.value)


def test_422_string_and_list_errors_become_field_errors(sleeps):
    script = Script(
        answer(
            422,
            {
                "message": "Validation failed.",
                "errors": {
                    "docker_compose_raw": "The docker_compose_raw should be base64 encoded."
                },
            },
        ),
        answer(422, {"message": "Validation failed.", "errors": ["Invalid URL: ftp://x"]}),
    )
    with mock_client(script, sleeps) as client:
        with pytest.raises(ValidationFailed) as first:
            client.create_service(**CREATE_ARGS)
        with pytest.raises(ValidationFailed) as second:
            client.update_service("s" * 24, compose=COMPOSE, urls=[])

    assert first.value.field_errors == {
        "docker_compose_raw": ["The docker_compose_raw should be base64 encoded."]
    }
    assert second.value.field_errors == {"_": ["Invalid URL: ftp://x"]}
    assert sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_server_error(status, sleeps):
    script = Script(answer(status, {"message": "Server Error"}))
    with mock_client(script, sleeps, attempts=1) as client, pytest.raises(ServerError) as caught:
        client.list_services()

    assert caught.value.status == status
    assert caught.value.message == "Server Error"
    assert caught.value.transient is True


def test_an_html_error_page_falls_back_to_the_reason_phrase(sleeps):
    script = Script(answer(500, "<html>Whoops</html>"))
    with mock_client(script, sleeps, attempts=1) as client, pytest.raises(ServerError) as caught:
        client.get_service("s" * 24)

    assert caught.value.message == "Internal Server Error"


def test_already_running_and_already_stopped_are_already_in_state(sim_client, service):
    with pytest.raises(AlreadyInState) as stopped:
        sim_client.stop_service(service)
    sim_client.start_service(service)
    # nginx without a healthcheck: Coolify says running:unknown, never running:healthy.
    wait_for(sim_client, service, lambda status: status == "running:unknown")
    with pytest.raises(AlreadyInState) as running:
        sim_client.start_service(service)

    assert stopped.value.message == "Service is already stopped."
    assert running.value.message == "Service is already running."
    assert running.value.status == 400


def test_other_400s_are_plain_bad_requests(sim_client, project, service):
    with pytest.raises(BadRequest) as caught:
        sim_client.delete_project(project)

    assert type(caught.value) is BadRequest
    assert caught.value.message == "Project has resources, so it cannot be deleted."


# --- retries: reads -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["reset", "error", "timeout"])
def test_a_read_is_retried_after_a_reset_5xx_or_timeout(coolify_sim, sleeps, kind):
    coolify_sim.add_fault(
        Fault(path=r"/api/v1/servers", kind=kind, method="GET", times=2, delay=1.0)
    )
    with CoolifyClient(
        coolify_sim.url, "sim-root-token", timeout=0.3, attempts=3, sleep=sleeps
    ) as client:
        servers = client.list_servers()

    assert [s["uuid"] for s in servers] == [SERVER_UUID]
    assert len(coolify_sim.fired) == 2
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("kind", "error"),
    [("reset", ConnectionFailed), ("error", ServerError), ("timeout", RemoteTimeout)],
)
def test_a_read_gives_up_after_attempts(coolify_sim, sleeps, kind, error):
    coolify_sim.add_fault(Fault(path=r"/api/v1/services", kind=kind, times=None, delay=1.0))
    client = CoolifyClient(coolify_sim.url, "sim-root-token", timeout=0.3, attempts=3, sleep=sleeps)
    with client, pytest.raises(error):
        client.list_services()

    assert len(coolify_sim.fired) == 3
    assert len(sleeps) == 2


def test_backoff_doubles_up_to_the_cap(monkeypatch, sleeps):
    """With the jitter pinned to its upper bound, the delays are 0.5, 1, 2, 4, 8, 8 s."""
    bounds: list[tuple[float, float]] = []

    def upper(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    monkeypatch.setattr(http_module.random, "uniform", upper)
    script = Script(*[answer(503, {"message": "Server Error"})] * 7)
    with mock_client(script, sleeps, attempts=7) as client, pytest.raises(ServerError):
        client.list_services()

    assert len(script.requests) == 7
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert all(low == 0 for low, _ in bounds)  # full jitter: anywhere from 0 up to the cap
    assert BACKOFF_BASE == 0.5 and BACKOFF_MAX == 8.0


def test_backoff_is_jittered_bounded_and_grows(monkeypatch):
    monkeypatch.setattr(http_module, "random", random.Random(20261127))
    runs = []
    for _ in range(40):
        sleeps = Sleeps()
        script = Script(*[answer(502)] * 6)
        with mock_client(script, sleeps, attempts=6) as client, pytest.raises(ServerError):
            client.get_service("s" * 24)
        runs.append(sleeps)

    caps = [min(BACKOFF_MAX, BACKOFF_BASE * 2**i) for i in range(5)]
    for delays in runs:
        assert len(delays) == 5
        assert all(0 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    by_attempt = list(zip(*runs, strict=True))
    assert all(len(set(column)) == len(column) for column in by_attempt)  # jittered
    means = [sum(column) / len(column) for column in by_attempt]
    assert means == sorted(means), means  # growing on average
    assert means[-1] > 4 * means[0]


# --- retries: writes ----------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["before", "after"])
@pytest.mark.parametrize("kind", ["reset", "timeout"])
def test_create_service_is_not_retried_after_a_reset_or_timeout(
    coolify_sim, sim_client, project, sleeps, kind, phase
):
    coolify_sim.add_fault(
        Fault(path=r"/api/v1/services", kind=kind, method="POST", phase=phase, delay=1.0)
    )
    sim_client.http.timeout = httpx.Timeout(0.3)

    with pytest.raises(ConnectionFailed) as caught:
        sim_client.create_service(**sim_create_args(project))

    assert not isinstance(caught.value, NotConnected)
    assert isinstance(caught.value, RemoteTimeout) is (kind == "timeout")
    assert len(coolify_sim.fired) == 1
    assert sleeps == []
    # after: Coolify acted, and only one service exists (a blind retry would have made two
    # or hit its own domain with a 409).
    services = coolify_sim.api.snapshot()["services"]
    assert len(services) == (1 if phase == "after" else 0)


@pytest.mark.parametrize("kind", ["reset", "timeout", "error"])
def test_start_is_not_retried_after_a_reset_timeout_or_5xx(
    coolify_sim, sim_client, service, sleeps, kind
):
    coolify_sim.add_fault(
        Fault(path=r"/api/v1/services/\w+/start", kind=kind, phase="after", delay=1.0)
    )
    sim_client.http.timeout = httpx.Timeout(0.3)

    with pytest.raises(ClientError) as caught:
        sim_client.start_service(service)

    assert caught.value.transient is True
    assert len(coolify_sim.fired) == 1
    assert sleeps == []
    # The start did happen: its queued job runs and the service leaves `exited` (it would
    # stay there forever otherwise).
    wait_for(sim_client, service, lambda status: status != "exited")


def test_writes_are_retried_after_connection_refused(sleeps):
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    script = Script(
        refused, refused, answer(201, {"uuid": "n" * 24, "domains": ["https://web.example.test"]})
    )
    with mock_client(script, sleeps) as client:
        created = client.create_service(**CREATE_ARGS)

    assert created["uuid"] == "n" * 24
    assert len(script.requests) == 3
    assert len(sleeps) == 2


def test_start_is_retried_after_connection_refused_then_reaches_the_simulator(
    coolify_sim, service, sleeps
):
    """A transport that refuses the first connection, then passes through to the simulator."""
    real = httpx.HTTPTransport()
    attempts: list[str] = []

    class RefuseOnce(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            attempts.append(request.url.path)
            if len(attempts) == 1:
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            return real.handle_request(request)

    with CoolifyClient(
        coolify_sim.url, "sim-root-token", transport=RefuseOnce(), sleep=sleeps
    ) as client:
        client.start_service(service)
        # The start was queued once the retry got through: the service comes up.
        wait_for(client, service, lambda status: status.startswith("running:"))

    assert attempts[:2] == [f"/api/v1/services/{service}/start"] * 2
    assert len(sleeps) == 1


def test_nothing_listening_is_not_connected_and_retried_even_for_writes(sleeps):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = CoolifyClient(f"http://127.0.0.1:{port}", SECRET, attempts=3, sleep=sleeps)
    with client, pytest.raises(NotConnected):
        client.create_project("abc")

    assert len(sleeps) == 2


def test_a_5xx_on_a_write_is_not_retried(sleeps):
    script = Script(answer(500, {"message": "Server Error"}))
    with mock_client(script, sleeps) as client, pytest.raises(ServerError):
        client.create_project("abc")

    assert len(script.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.create_service(**CREATE_ARGS),
        lambda c: c.start_service("s" * 24),
        lambda c: c.create_project("abc"),
    ],
    ids=["create_service", "start_service", "create_project"],
)
def test_writes_are_retried_after_429_honouring_retry_after(call, sleeps):
    script = Script(
        answer(429, {"message": "Too Many Attempts."}, {"Retry-After": "7"}),
        answer(429, {"message": "Too Many Attempts."}, {"Retry-After": "2"}),
        canned,
    )
    with mock_client(script, sleeps) as client:
        call(client)

    assert len(script.requests) == 3
    assert len(sleeps) == 2
    assert 7 <= sleeps[0] <= 7.5 and 2 <= sleeps[1] <= 2.5
    assert script.requests[0].content == script.requests[2].content  # the same call again


def test_retry_after_at_the_cap_is_slept(sleeps):
    script = Script(
        answer(429, {"message": "Too Many Attempts."}, {"Retry-After": str(int(RETRY_AFTER_MAX))}),
        canned,
    )
    with mock_client(script, sleeps) as client:
        client.list_services()

    assert sleeps[0] >= RETRY_AFTER_MAX


@pytest.mark.parametrize(
    "retry_after",
    [int(RETRY_AFTER_MAX) + 1, 3600],
    ids=["just-above-the-cap", "an-hour"],
)
def test_a_retry_after_above_the_cap_is_raised_not_slept(retry_after, sleeps):
    script = Script(
        answer(429, {"message": "Too Many Attempts."}, {"Retry-After": str(retry_after)})
    )
    with mock_client(script, sleeps) as client, pytest.raises(RateLimited) as caught:
        client.list_services()

    assert caught.value.retry_after == retry_after
    assert caught.value.message == "Too Many Attempts."
    assert sleeps == []
    assert len(script.requests) == 1


def test_a_429_without_retry_after_backs_off(sleeps):
    script = Script(answer(429, {"message": "Too Many Attempts."}), canned)
    with mock_client(script, sleeps) as client:
        client.list_services()

    assert len(sleeps) == 1 and 0 <= sleeps[0] <= BACKOFF_BASE


def test_429_from_the_simulator_is_retried_then_raised(coolify_sim, sim_client, sleeps):
    coolify_sim.api.rate_limit_per_minute = 1
    sim_client.list_projects()

    with pytest.raises(RateLimited) as caught:
        sim_client.list_projects()

    assert 1 <= caught.value.retry_after <= 60
    assert len(sleeps) == 2  # attempts=3, each 429 honoured
    assert all(s >= caught.value.retry_after - 1 for s in sleeps)


# --- what the client sends ----------------------------------------------------------------


@pytest.mark.parametrize("delete_volumes", [True, False])
def test_delete_service_sends_all_four_flags_and_keeps_cleanup_off_with_the_volumes(
    delete_volumes, sleeps
):
    script = Script(answer(200, {"message": "Service deletion request queued."}))
    with mock_client(script, sleeps) as client:
        client.delete_service("s" * 24, delete_volumes=delete_volumes)

    [request] = script.requests
    assert request.method == "DELETE"
    assert request.url.path == f"/api/v1/services/{'s' * 24}"
    assert dict(request.url.params) == {
        "delete_configurations": "true",
        "delete_volumes": "true" if delete_volumes else "false",
        "docker_cleanup": "true" if delete_volumes else "false",
        "delete_connected_networks": "true",
    }
    assert request.content == b""


def test_delete_service_default_deletes_volumes_and_false_keeps_them(
    coolify_sim, sim_client, project
):
    coolify_sim.api.timings.delete_seconds = 0
    kept = sim_client.create_service(**sim_create_args(project, "kept.sim.test"))["uuid"]
    gone = sim_client.create_service(**sim_create_args(project, "gone.sim.test"))["uuid"]
    # Named volumes exist only once `docker compose up` has created them: start both first.
    assert coolify_sim.api.snapshot()["volumes"] == []
    for uuid in (kept, gone):
        sim_client.start_service(uuid)
    for uuid in (kept, gone):
        wait_for(sim_client, uuid, lambda status: status.startswith("running:"))
    assert coolify_sim.api.snapshot()["volumes"] == sorted([f"{kept}_web-data", f"{gone}_web-data"])

    sim_client.delete_service(kept, delete_volumes=False)
    sim_client.delete_service(gone)

    # DeleteResourceJob is queued: the services go once it has stopped them and cleaned up.
    deadline = time.monotonic() + 5
    while remaining := sim_client.list_services():
        assert time.monotonic() < deadline, f"never deleted: {[s['uuid'] for s in remaining]}"
        time.sleep(0.05)
    assert coolify_sim.api.snapshot()["volumes"] == [f"{kept}_web-data"]


def test_compose_is_sent_as_strict_one_line_base64(sleeps):
    script = Script(canned, canned)
    with mock_client(script, sleeps) as client:
        client.create_service(**CREATE_ARGS)
        client.update_service("s" * 24, compose=COMPOSE, urls=CREATE_ARGS["urls"])

    for index in (0, 1):
        raw = script.body(index)["docker_compose_raw"]
        assert "\n" not in raw and len(raw) > 76  # longer than one encodebytes() line
        assert re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", raw) and len(raw) % 4 == 0
        assert base64.b64decode(raw, validate=True).decode("utf-8") == COMPOSE
    assert encode_compose(COMPOSE) == base64.b64encode(COMPOSE.encode()).decode()


def test_create_service_sends_exactly_the_fields_coolify_accepts(sleeps):
    script = Script(canned)
    with mock_client(script, sleeps) as client:
        client.create_service(**CREATE_ARGS)

    [request] = script.requests
    assert (request.method, request.url.path) == ("POST", "/api/v1/services")
    assert script.body() == {
        "project_uuid": CREATE_ARGS["project_uuid"],
        "server_uuid": SERVER_UUID,
        "environment_name": "production",
        "name": "customer-123-main",
        "description": "a stack",
        "docker_compose_raw": encode_compose(COMPOSE),
        "urls": CREATE_ARGS["urls"],
        "instant_deploy": False,
    }


def test_the_simulator_accepts_what_the_client_sends(sim_client, project, coolify_sim):
    created = sim_client.create_service(**sim_create_args(project))

    assert created["domains"] == ["https://web.sim.test"]
    [state] = coolify_sim.api.snapshot()["services"]
    assert "hellø wörld" in state["docker_compose_raw"]


def test_env_upsert_is_a_literal_bulk_patch(sleeps):
    script = Script(canned)
    with mock_client(script, sleeps) as client:
        client.upsert_service_envs("s" * 24, {"API_KEY": "a$b", "GREETING": "hi"})

    [request] = script.requests
    assert (request.method, request.url.path) == ("PATCH", f"/api/v1/services/{'s' * 24}/envs/bulk")
    assert script.body() == {
        "data": [
            {"key": "API_KEY", "value": "a$b", "is_literal": True},
            {"key": "GREETING", "value": "hi", "is_literal": True},
        ]
    }


# --- the token stays secret ---------------------------------------------------------------


def test_the_token_is_not_in_repr():
    with CoolifyClient(BASE, SECRET) as client:
        assert SECRET not in repr(client)
        assert "SECRET" not in repr(client)
        assert repr(client) == f"CoolifyClient({BASE!r})"


def test_the_token_is_in_no_error_message(coolify_sim, service, caplog, sleeps):
    caplog.set_level(logging.DEBUG)
    errors: list[ClientError] = []
    scripted = [
        answer(401, {"message": "Unauthenticated."}),
        answer(403, {"message": "Missing required permissions: deploy"}),
        answer(404, {"message": "Service not found."}),
        answer(409, {"message": "Domain conflicts detected.", "conflicts": []}),
        answer(422, {"message": "Validation failed.", "errors": {"name": ["bad"]}}),
        answer(429, {"message": "Too Many Attempts."}, {"Retry-After": "999"}),
        answer(500, {"message": "Server Error"}),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ]
    for step in scripted:
        with mock_client(Script(step), sleeps, attempts=1) as client:
            with pytest.raises(ClientError) as caught:
                client.start_service("s" * 24)
            errors.append(caught.value)
    coolify_sim.api.add_token(SECRET, {"read"})
    coolify_sim.add_fault(Fault(path=r"/api/v1/services/\w+", kind="reset", method="GET"))
    with CoolifyClient(coolify_sim.url, SECRET, attempts=2, sleep=sleeps) as client:
        client.get_service(service)  # one reset, retried and logged
        for call in (lambda: client.start_service(service), lambda: client.create_project("x")):
            with pytest.raises(ClientError) as caught:
                call()
            errors.append(caught.value)

    assert len(errors) == len(scripted) + 2
    for error in errors:
        for text in (str(error), repr(error), " ".join(map(str, error.args))):
            assert SECRET not in text and "SECRET" not in text, text
    assert SECRET not in caplog.text
    assert "retrying" in caplog.text  # the retry was logged, without the token
