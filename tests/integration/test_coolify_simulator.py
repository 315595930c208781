"""The Coolify simulator behaves like Coolify (../shared/coolify/API-NOTES.md) over real HTTP.

These tests speak raw HTTP (httpx, no CoolifyClient) so that they check the simulator alone:
its bodies, status codes and headers, its state, fault injection, and the /_sim/ controls.
A ManualClock replaces the simulator's clock wherever a test looks at timing (status moves,
queued deletes, the rate-limit window), so nothing depends on how fast the machine is.
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from stacks.coolify_simulator.api import SERVER_UUID
from stacks.coolify_simulator.server import Fault, save_state
from tests.conftest import SIM_TOKEN

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MISSING = "nosuchuuid00000000000000"

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


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class ManualClock:
    def __init__(self) -> None:
        self.t = 10_000.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Api:
    """Raw calls to the simulator: /api/v1 + path, JSON Accept, a Bearer token (or none)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout)
        # The /_sim/ control endpoints take the simulator's own token.
        self.control = httpx.Client(
            base_url=url, timeout=timeout, headers={"Authorization": f"Bearer {SIM_TOKEN}"}
        )

    def __call__(
        self,
        method: str,
        path: str,
        *,
        token: str | None = SIM_TOKEN,
        json: Any = None,
        params: dict[str, str] | None = None,
        prefix: str = "/api/v1",
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, prefix + path, json=json, params=params, headers=headers)

    def close(self) -> None:
        self.http.close()
        self.control.close()


@pytest.fixture
def api(coolify_sim):
    client = Api(coolify_sim.url)
    yield client
    client.close()


@pytest.fixture
def clock(coolify_sim) -> ManualClock:
    """A manual clock, no status noise, and no queue lag / stop time / config-save pause: the
    timing tests below set what they look at."""
    manual = ManualClock()
    coolify_sim.api.clock = manual
    coolify_sim.api.noise_seed = None
    timings = coolify_sim.api.timings
    timings.queue_seconds = timings.stop_seconds = timings.save_seconds = 0.0
    timings.health_seconds = 0.0
    timings.start_seconds, timings.refresh_seconds, timings.delete_seconds = 0.05, 0.25, 0.05
    return manual


@pytest.fixture
def project(api) -> str:
    response = api("POST", "/projects", json={"name": "sim-project"})
    assert response.status_code == 201, response.text
    return response.json()["uuid"]


def service_body(project: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "project_uuid": project,
        "server_uuid": SERVER_UUID,
        "environment_name": "production",
        "name": "sim-service",
        "docker_compose_raw": b64(COMPOSE),
        "urls": [{"name": "web", "url": "https://web.sim.test"}],
        "instant_deploy": False,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def create_service(api: Api, project: str, **overrides: Any) -> str:
    response = api("POST", "/services", json=service_body(project, **overrides))
    assert response.status_code == 201, response.text
    return response.json()["uuid"]


@pytest.fixture
def service(api, project) -> str:
    return create_service(api, project)


def add_token(sim, token: str, abilities: set[str], user: str = "root") -> str:
    sim.api.add_token(token, abilities, user=user)
    return token


# --- creating services: validation ------------------------------------------------------


def test_a_service_is_created_with_its_domains_envs_and_volumes(api, project, coolify_sim):
    response = api("POST", "/services", json=service_body(project))

    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"uuid", "domains"}
    assert len(created["uuid"]) == 24 and created["uuid"].isalnum()
    assert created["domains"] == ["https://web.sim.test"]
    [state] = coolify_sim.api.snapshot()["services"]
    assert state["status"] == "exited"
    assert state["envs"]["GREETING"] == "hello"  # referenced ${VAR:-default} → auto-created
    # The parser renames the named volume; Docker only creates it at `compose up`.
    assert f"{created['uuid']}_web-data:/usr/share/nginx/html" in state["docker_compose"]
    assert coolify_sim.api.snapshot()["volumes"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/services", {"domains": "https://x.sim.test"}, "domains"),
        ("POST", "/services", {"connect_to_docker_network": True}, "connect_to_docker_network"),
        ("POST", "/projects", {"name": "abc", "color": "red"}, "color"),
    ],
    ids=["service-domains", "service-connect-on-create", "project-extra"],
)
def test_unknown_fields_are_refused_with_422(api, project, method, path, body, field):
    if path == "/services":
        body = {**service_body(project), **body}

    response = api(method, path, json=body)

    assert response.status_code == 422
    assert response.json() == {
        "message": "Validation failed.",
        "errors": {field: ["This field is not allowed."]},
    }


def test_unknown_fields_are_refused_on_patch_but_dropped_by_bulk_envs(api, service):
    patch = api("PATCH", f"/services/{service}", json={"fqdn": "https://x.sim.test"})
    bulk = api(
        "PATCH",
        f"/services/{service}/envs/bulk",
        json={"data": [{"key": "A", "value": "1", "is_secret": True}]},
    )

    assert patch.status_code == 422
    assert patch.json()["errors"] == {"fqdn": ["This field is not allowed."]}
    # create_bulk_envs has no allow-list: updateOrCreate keeps fillable fields only.
    assert bulk.status_code == 201
    assert "is_secret" not in bulk.json()[0]


@pytest.mark.parametrize(
    "raw",
    [
        COMPOSE,  # raw YAML
        base64.encodebytes(COMPOSE.encode()).decode(),  # base64 with line breaks
        base64.urlsafe_b64encode(b"services:\n  a~?:\n    image: x\n").decode(),  # -/_ alphabet
        b64(COMPOSE).rstrip("="),  # padding dropped
    ],
    ids=["raw-yaml", "base64-with-newlines", "urlsafe-alphabet", "unpadded"],
)
def test_compose_must_be_strict_base64(api, project, raw, coolify_sim):
    response = api("POST", "/services", json=service_body(project, docker_compose_raw=raw))

    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "Validation failed."
    # A *string*, not a list, as Coolify's hand-written check sends it.
    assert body["errors"]["docker_compose_raw"] == (
        "The docker_compose_raw should be base64 encoded."
    )
    assert coolify_sim.api.snapshot()["services"] == []


def test_strict_base64_check_accepts_the_padding_it_needs(api, project):
    compose = COMPOSE + "# pad\n"  # a length that needs '=' padding
    assert b64(compose).endswith("=")

    assert api("POST", "/services", json=service_body(project, docker_compose_raw=b64(compose)))


def test_yaml_without_services_is_refused(api, project):
    raw = b64("version: '3.8'\nvolumes:\n  data: {}\n")

    response = api("POST", "/services", json=service_body(project, docker_compose_raw=raw))

    assert response.status_code == 422
    assert isinstance(response.json()["errors"]["docker_compose_raw"], str)
    assert "services" in response.json()["errors"]["docker_compose_raw"]


def test_a_byte_order_mark_breaks_the_compose(api, project):
    raw = b64("\ufeff" + COMPOSE)

    response = api("POST", "/services", json=service_body(project, docker_compose_raw=raw))

    assert response.status_code == 422
    assert "docker_compose_raw" in response.json()["errors"]


def test_both_type_and_compose_is_422(api, project, coolify_sim):
    response = api("POST", "/services", json=service_body(project, type="nginx"))

    assert response.status_code == 422
    assert response.json() == {
        "message": "You cannot provide both service type and docker_compose_raw. Use one or "
        "the other."
    }
    assert coolify_sim.api.snapshot()["services"] == []


@pytest.mark.parametrize("raw", [None, "", "   "], ids=["null", "empty", "blank"])
def test_neither_type_nor_compose_is_required_without(api, project, raw, coolify_sim):
    """ "" and "   " become null (TrimStrings + ConvertEmptyStringsToNull)."""
    response = api("POST", "/services", json=service_body(project, docker_compose_raw=raw))

    assert response.status_code == 422
    assert response.json()["errors"] == {
        "type": ["The type field is required when docker compose raw is not present."],
        "docker_compose_raw": [
            "The docker compose raw field is required when type is not present."
        ],
    }
    assert coolify_sim.api.snapshot()["services"] == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"project_uuid": MISSING}, "Project not found."),
        ({"server_uuid": MISSING}, "Server not found."),
        ({"environment_name": "staging"}, "Environment not found."),
    ],
    ids=["project", "server", "environment"],
)
def test_missing_project_server_or_environment_is_404(api, project, overrides, message):
    response = api("POST", "/services", json=service_body(project, **overrides))

    assert response.status_code == 404
    assert response.json() == {"message": message}


def test_one_of_environment_name_or_uuid_is_enough(api, project):
    env_uuid = api("GET", f"/projects/{project}").json()["environments"][0]["uuid"]
    by_uuid = service_body(project, environment_name=None, environment_uuid=env_uuid)

    assert api("POST", "/services", json=by_uuid).status_code == 201
    neither = service_body(project, environment_name=None, urls=[])
    response = api("POST", "/services", json=neither)
    assert response.status_code == 422
    assert response.json() == {
        "message": "You need to provide at least one of environment_name or environment_uuid."
    }


def test_a_url_for_a_name_that_is_not_a_compose_service_is_422(api, project, coolify_sim):
    urls = [{"name": "frontend", "url": "https://web.sim.test"}]

    response = api("POST", "/services", json=service_body(project, urls=urls))

    assert response.status_code == 422
    assert response.json()["errors"] == ["Service container with 'frontend' not found."]
    assert coolify_sim.api.snapshot()["services"] == []  # the just-created service is gone


def test_a_domain_used_by_another_service_is_409_and_nothing_is_created(
    api, project, service, coolify_sim
):
    before = coolify_sim.api.snapshot()

    response = api("POST", "/services", json=service_body(project, name="second"))

    assert response.status_code == 409
    body = response.json()
    assert body["message"] == (
        "Domain conflicts detected. Use force_domain_override=true to proceed."
    )
    assert body["warning"]
    [web] = [a for a in before["services"][0]["applications"] if a["name"] == "web"]
    # domains.php:206: the stored URL as written, and the *application's* uuid.
    assert body["conflicts"] == [
        {
            "domain": "https://web.sim.test",
            "resource_name": "sim-service",
            "resource_uuid": web["uuid"],
            "resource_type": "service",
            "message": "Domain https://web.sim.test is already in use by service 'sim-service'",
        }
    ]
    after = coolify_sim.api.snapshot()
    assert [s["uuid"] for s in after["services"]] == [service]
    assert after["volumes"] == before["volumes"]

    forced = service_body(project, name="second", force_domain_override=True)
    assert api("POST", "/services", json=forced).status_code == 201


def test_update_conflict_leaves_the_service_as_it_was(api, project, service):
    other = create_service(
        api, project, name="other", urls=[{"name": "web", "url": "https://other.sim.test"}]
    )

    response = api(
        "PATCH",
        f"/services/{other}",
        json={"urls": [{"name": "web", "url": "https://web.sim.test"}]},
    )

    assert response.status_code == 409
    [web] = [
        a for a in api("GET", f"/services/{other}").json()["applications"] if a["name"] == "web"
    ]
    assert web["fqdn"] == "https://other.sim.test"


def test_body_checks_on_writes(api, project):
    empty = api("POST", "/projects", json={})
    not_json = api.http.post(
        "/api/v1/projects",
        content=b"name=x",
        headers={"Authorization": f"Bearer {SIM_TOKEN}", "Content-Type": "text/plain"},
    )

    assert empty.status_code == 400
    assert empty.json() == {"message": "Invalid request.", "error": "Empty JSON."}
    assert not_json.status_code == 400
    assert not_json.json()["error"] == "Content-Type must be application/json."


# --- lifecycle ----------------------------------------------------------------------------


def test_status_moves_from_exited_to_starting_to_exited_to_running(
    api, service, clock, coolify_sim
):
    """Start from exited (research B §1): the Activity reads starting:unhealthy; once it is
    finished the stored rows still say exited until the next status check."""
    timings = coolify_sim.api.timings
    timings.queue_seconds, timings.start_seconds, timings.refresh_seconds = 1.0, 2.0, 10.0
    clock.t = 10_000.5  # checks at multiples of 10 s

    def status() -> str:
        return api("GET", f"/services/{service}").json()["status"]

    assert status() == "exited"  # no ":health" part
    started = api("POST", f"/services/{service}/start")
    assert started.status_code == 200
    assert started.json() == {"message": "Service starting request queued."}
    assert status() == "exited"  # the job waits in the queue
    clock.advance(1)
    assert status() == "starting:unhealthy"
    clock.advance(2)
    assert status() == "exited"  # finished, not yet checked
    clock.advance(7)
    assert status() == "running:unknown"  # nginx and redis have no healthcheck
    apps = api("GET", f"/services/{service}").json()["applications"]
    assert {a["status"] for a in apps} == {"running:unknown"}


def test_status_reaches_running_on_the_real_clock(api, service):
    api("POST", f"/services/{service}/start")
    deadline = time.monotonic() + 5
    while api("GET", f"/services/{service}").json()["status"] != "running:unknown":
        assert time.monotonic() < deadline, "never reached running:unknown"
        time.sleep(0.02)


def test_start_on_running_and_stop_on_exited_are_400(api, service, clock):
    stopped = api("POST", f"/services/{service}/stop")
    assert stopped.status_code == 400
    assert stopped.json() == {"message": "Service is already stopped."}

    api("POST", f"/services/{service}/start")
    clock.advance(5)
    assert api("GET", f"/services/{service}").json()["status"] == "running:unknown"
    again = api("POST", f"/services/{service}/start")
    assert again.status_code == 400
    assert again.json() == {"message": "Service is already running."}

    stop = api("POST", f"/services/{service}/stop")
    assert stop.status_code == 200
    assert stop.json() == {"message": "Service stopping request queued."}
    clock.advance(1)
    assert api("GET", f"/services/{service}").json()["status"] == "exited"


def test_restart_works_in_any_state(api, service, clock):
    response = api("POST", f"/services/{service}/restart")

    assert response.status_code == 200
    # The OpenAPI example says "restaring"; the controller spells it right.
    assert response.json() == {"message": "Service restarting request queued."}
    assert api("GET", f"/services/{service}").json()["status"] == "starting:unhealthy"


@pytest.mark.parametrize("action", ["start", "stop", "restart"])
def test_get_on_a_lifecycle_endpoint_is_405_with_allow_post(api, service, action):
    response = api("GET", f"/services/{service}/{action}")

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json() == {"message": "This endpoint has changed to a POST request."}


def test_lifecycle_on_an_unknown_service_is_404(api):
    for action in ("start", "stop", "restart"):
        response = api("POST", f"/services/{MISSING}/{action}")
        assert response.status_code == 404
        assert response.json() == {"message": "Service not found."}


def test_logs_need_a_sub_service_name_and_a_running_container(api, service, clock):
    def logs(**params: str) -> httpx.Response:
        return api("GET", f"/services/{service}/logs", params=params)

    assert logs().json() == {"message": "Sub service name is required."}
    assert logs(sub_service_name="web").json() == {"message": "Container not found."}
    api("POST", f"/services/{service}/start")
    clock.advance(5)

    ok = logs(sub_service_name="web")
    assert ok.status_code == 200 and "Starting nginx:1.27 (web)" in ok.json()["logs"]
    assert logs(sub_service_name="nope").status_code == 404


# --- deletion -----------------------------------------------------------------------------


def test_delete_is_queued_then_the_service_and_its_volumes_are_gone(
    api, service, clock, coolify_sim
):
    coolify_sim.api.timings.delete_seconds = 0.5
    volume = f"{service}_web-data"
    api("POST", f"/services/{service}/start")
    clock.advance(1)  # compose up created the volume
    coolify_sim.api.timings.queue_seconds = 0.2

    response = api("DELETE", f"/services/{service}")

    assert response.status_code == 200
    assert response.json() == {"message": "Service deletion request queued."}
    assert api("GET", f"/services/{service}").status_code == 200  # still readable
    assert volume in coolify_sim.api.snapshot()["volumes"]
    clock.advance(0.5)
    assert api("GET", f"/services/{service}").json()["status"] == "exited"  # stopped, not gone
    assert volume not in coolify_sim.api.snapshot()["volumes"]
    clock.advance(0.3)
    assert api("GET", f"/services/{service}").json() == {"message": "Service not found."}
    state = coolify_sim.api.snapshot()
    assert volume not in state["volumes"]
    [deleted] = state["deleted_services"]
    assert deleted["uuid"] == service
    assert deleted["delete_volumes"] is True  # Coolify's default when the flag is left out


def test_delete_with_delete_volumes_false_keeps_the_volumes(api, service, clock, coolify_sim):
    flags = {
        "delete_configurations": "true",
        "delete_volumes": "false",
        "docker_cleanup": "true",
        "delete_connected_networks": "true",
    }

    api("POST", f"/services/{service}/start")
    clock.advance(1)
    assert api("DELETE", f"/services/{service}", params=flags).status_code == 200
    clock.advance(5)

    state = coolify_sim.api.snapshot()
    assert state["services"] == []
    assert state["volumes"] == [f"{service}_web-data"]
    assert state["deleted_services"][0]["delete_volumes"] is False


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/services/{service}/start", None),
        ("GET", "/services/{service}/envs", None),
        ("PATCH", "/services/{service}/envs/bulk", {"data": [{"key": "A", "value": "1"}]}),
        ("PATCH", "/services/{service}", {"name": "renamed"}),
        ("GET", "/services/{service}/logs?sub_service_name=web", None),
    ],
    ids=["start", "envs", "bulk-envs", "patch", "logs"],
)
def test_once_a_queued_delete_finished_every_endpoint_sees_the_service_gone(
    api, service, clock, method, path, body
):
    """Every request first replays the jobs due by the clock (jobs.Lifecycle.advance)."""
    api("DELETE", f"/services/{service}")
    clock.advance(5)  # the deletion job is long done

    response = api(method, path.format(service=service), json=body)

    assert response.status_code == 404, response.text
    assert response.json() == {"message": "Service not found."}


def test_once_a_queued_delete_finished_the_server_lists_no_resource(api, service, clock):
    """The same, seen from GET /servers/{uuid}/resources."""
    api("DELETE", f"/services/{service}")
    clock.advance(5)

    assert api("GET", f"/servers/{SERVER_UUID}/resources").json() == []


def test_a_project_with_a_service_cannot_be_deleted_until_the_delete_finishes(
    api, project, service, clock, coolify_sim
):
    coolify_sim.api.timings.delete_seconds = 0.5
    refused = api("DELETE", f"/projects/{project}")
    assert refused.status_code == 400
    assert refused.json() == {"message": "Project has resources, so it cannot be deleted."}

    api("DELETE", f"/services/{service}")
    assert api("DELETE", f"/projects/{project}").status_code == 400  # deletion still queued
    clock.advance(1)

    deleted = api("DELETE", f"/projects/{project}")
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Project deleted."}
    assert api("GET", f"/projects/{project}").status_code == 404


# --- env vars and sensitive fields ------------------------------------------------------


def test_env_bulk_upsert_is_201_and_upserts_by_key(api, service, coolify_sim):
    data = [
        {"key": "GREETING", "value": "hi", "is_literal": True},
        {"key": "API_KEY", "value": "s3cr3t-value"},
    ]

    response = api("PATCH", f"/services/{service}/envs/bulk", json={"data": data})

    assert response.status_code == 201
    returned = {e["key"]: e for e in response.json()}
    assert returned["GREETING"]["value"] == "hi" and returned["GREETING"]["is_literal"] is True
    envs = coolify_sim.api.snapshot()["services"][0]["envs"]
    assert envs["GREETING"] == "hi" and envs["API_KEY"] == "s3cr3t-value"
    listed = api("GET", f"/services/{service}/envs").json()
    assert [e["key"] for e in listed].count("GREETING") == 1


@pytest.mark.parametrize("body", [{"data": []}, {"other": 1}], ids=["empty", "missing"])
def test_env_bulk_without_data_is_400(api, service, body):
    response = api("PATCH", f"/services/{service}/envs/bulk", json=body)

    assert response.status_code == 400
    assert response.json() == {"message": "Bulk data is required."}


def test_env_bulk_stops_at_the_first_bad_item_keeping_earlier_ones(api, service, coolify_sim):
    data = [{"key": "GOOD", "value": "1"}, {"key": "9bad", "value": "2"}, {"key": "LATER"}]

    response = api("PATCH", f"/services/{service}/envs/bulk", json={"data": data})

    assert response.status_code == 422
    envs = coolify_sim.api.snapshot()["services"][0]["envs"]
    assert "GOOD" in envs and "LATER" not in envs


def test_env_values_are_left_out_without_read_sensitive(api, service, coolify_sim):
    api(
        "PATCH",
        f"/services/{service}/envs/bulk",
        json={"data": [{"key": "API_KEY", "value": "s3cr3t-value"}]},
    )
    reader = add_token(coolify_sim, "reader-token", {"read"})
    sensitive = add_token(coolify_sim, "sensitive-token", {"read", "read:sensitive"})

    hidden = api("GET", f"/services/{service}/envs", token=reader)
    shown = api("GET", f"/services/{service}/envs", token=sensitive)

    assert hidden.status_code == 200
    assert "s3cr3t-value" not in hidden.text
    for env in hidden.json():
        assert "value" not in env and "real_value" not in env  # left out, not null
    [api_key] = [e for e in shown.json() if e["key"] == "API_KEY"]
    assert api_key["value"] == api_key["real_value"] == "s3cr3t-value"


def test_compose_is_left_out_without_read_sensitive(api, service, coolify_sim):
    reader = add_token(coolify_sim, "reader-token", {"read"})
    sensitive = add_token(coolify_sim, "sensitive-token", {"read", "read:sensitive"})

    hidden = api("GET", f"/services/{service}", token=reader).json()
    listed = api("GET", "/services", token=reader).json()
    shown = api("GET", f"/services/{service}", token=sensitive).json()
    root = api("GET", f"/services/{service}").json()

    assert "docker_compose_raw" not in hidden and "docker_compose" not in hidden
    assert all("docker_compose_raw" not in s for s in listed)
    assert "nginx:1.27" in shown["docker_compose_raw"]
    assert "nginx:1.27" in root["docker_compose_raw"]


# --- auth, abilities, rate limit --------------------------------------------------------


@pytest.mark.parametrize("token", ["wrong-token", None], ids=["wrong", "missing"])
def test_a_bad_or_missing_token_is_401(api, token):
    response = api("GET", "/services", token=token)

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthenticated."}


def test_the_right_token_under_another_scheme_is_401(api):
    response = api.http.get(
        "/api/v1/services",
        headers={"Authorization": f"Token {SIM_TOKEN}", "Accept": "application/json"},
    )

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthenticated."}


def test_health_needs_no_token(api):
    for path in ("/api/health", "/api/v1/health"):
        response = api("GET", path, token=None, prefix="")
        assert response.status_code == 200 and response.text == "OK"
        assert response.headers["content-type"].startswith("text/html")


def test_version_is_plain_text(api):
    response = api("GET", "/version")

    assert response.status_code == 200
    assert response.text == "4.3.11"
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("abilities", "method", "path", "missing"),
    [
        ({"read", "write"}, "POST", "/services/{service}/start", "deploy"),
        ({"read"}, "POST", "/projects", "write"),
        ({"read"}, "DELETE", "/services/{service}", "write"),
        ({"write"}, "GET", "/services", "read"),  # abilities do not imply each other
        ({"deploy"}, "GET", "/version", "read"),
    ],
    ids=[
        "start-needs-deploy",
        "create-needs-write",
        "delete-needs-write",
        "write-cannot-read",
        "version-needs-read",
    ],
)
def test_a_missing_ability_is_403(api, service, coolify_sim, abilities, method, path, missing):
    token = add_token(coolify_sim, "limited-token", abilities)

    response = api(method, path.format(service=service), token=token, json={"name": "abcd"})

    assert response.status_code == 403
    assert response.json() == {"message": f"Missing required permissions: {missing}"}


def test_deploy_ability_is_enough_for_lifecycle(api, service, coolify_sim):
    token = add_token(coolify_sim, "deployer", {"deploy"})

    assert api("POST", f"/services/{service}/start", token=token).status_code == 200


def test_the_rate_limit_gives_429_with_headers_per_token_user(api, coolify_sim, clock):
    coolify_sim.api.rate_limit_per_minute = 5
    alice = add_token(coolify_sim, "alice-1", {"root"}, user="alice")
    alice_again = add_token(coolify_sim, "alice-2", {"root"}, user="alice")
    bob = add_token(coolify_sim, "bob-1", {"root"}, user="bob")

    remaining = []
    for _ in range(5):
        ok = api("GET", "/projects", token=alice)
        assert ok.status_code == 200
        assert ok.headers["X-RateLimit-Limit"] == "5"
        remaining.append(int(ok.headers["X-RateLimit-Remaining"]))
    sixth = api("GET", "/projects", token=alice)

    assert remaining == [4, 3, 2, 1, 0]
    assert sixth.status_code == 429
    assert sixth.json() == {"message": "Too Many Attempts."}
    assert 1 <= int(sixth.headers["Retry-After"]) <= 60
    assert sixth.headers["X-RateLimit-Limit"] == "5"
    assert sixth.headers["X-RateLimit-Remaining"] == "0"
    assert int(sixth.headers["X-RateLimit-Reset"]) >= int(time.time())
    # Another token of the same user shares the budget; another user has its own.
    assert api("GET", "/projects", token=alice_again).status_code == 429
    other = api("GET", "/projects", token=bob)
    assert other.status_code == 200
    assert other.headers["X-RateLimit-Remaining"] == "4"
    # The window is a minute: it frees up once the oldest calls are 60 s old.
    clock.advance(60)
    assert api("GET", "/projects", token=alice).status_code == 200


def test_health_is_not_rate_limited_by_the_api_budget(api, coolify_sim):
    coolify_sim.api.rate_limit_per_minute = 1
    api("GET", "/projects")

    assert api("GET", "/projects").status_code == 429
    assert api("GET", "/api/health", token=None, prefix="").status_code == 200


def test_unknown_routes_are_404_with_docs(api):
    response = api("GET", "/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"message": "Not found.", "docs": "https://coolify.io/docs"}


# --- faults -------------------------------------------------------------------------------

FAST_TIMEOUT = 0.5


@pytest.fixture
def fast_api(coolify_sim):
    client = Api(coolify_sim.url, timeout=FAST_TIMEOUT)
    yield client
    client.close()


def project_names(sim) -> list[str]:
    return [p["name"] for p in sim.api.snapshot()["projects"]]


@pytest.mark.parametrize("phase", ["before", "after"])
@pytest.mark.parametrize("kind", ["timeout", "error", "reset", "slow"])
def test_each_fault_kind_in_each_phase(fast_api, coolify_sim, kind, phase):
    """before: nothing happened. after: the write happened and only the answer was lost."""
    delay = FAST_TIMEOUT * 3 if kind == "timeout" else 0.3
    coolify_sim.add_fault(
        Fault(path=r"/api/v1/projects", kind=kind, method="POST", phase=phase, delay=delay)
    )
    name = f"fault-{kind}-{phase}"

    started = time.monotonic()
    if kind == "timeout":
        with pytest.raises(httpx.TimeoutException):
            fast_api("POST", "/projects", json={"name": name})
    elif kind == "reset":
        with pytest.raises(httpx.TransportError) as caught:
            fast_api("POST", "/projects", json={"name": name})
        assert not isinstance(caught.value, httpx.TimeoutException)
    elif kind == "error":
        response = fast_api("POST", "/projects", json={"name": name})
        assert response.status_code == 500
        assert response.json() == {"message": "Server Error"}
    else:  # slow: the call succeeds, late
        response = fast_api("POST", "/projects", json={"name": name})
        assert response.status_code == 201
        assert time.monotonic() - started >= delay

    happened = name in project_names(coolify_sim)
    assert happened is (phase == "after" or kind == "slow")
    [fired] = coolify_sim.fired
    assert (fired["kind"], fired["phase"], fired["method"]) == (kind, phase, "POST")
    assert coolify_sim.faults == []  # times=1: used up
    assert fast_api("GET", "/projects").status_code == 200  # and the next call is normal


def test_an_error_fault_uses_its_status(api, coolify_sim):
    coolify_sim.add_fault(Fault(path=r"/api/v1/services", kind="error", status=503))

    assert api("GET", "/services").status_code == 503


def test_fault_times_are_honoured_and_only_matching_calls_fire(api, coolify_sim):
    coolify_sim.add_fault(Fault(path=r"/api/v1/projects", kind="error", method="GET", times=2))

    assert api("POST", "/projects", json={"name": "not-affected"}).status_code == 201
    assert api("GET", "/servers").status_code == 200
    statuses = [api("GET", "/projects").status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    assert len(coolify_sim.fired) == 2


def test_a_fault_with_times_none_fires_until_cleared(api, coolify_sim):
    coolify_sim.add_fault(Fault(path=r"/api/v1/.*", kind="error", times=None))

    assert [api("GET", "/projects").status_code for _ in range(4)] == [500] * 4
    coolify_sim.clear_faults()
    assert api("GET", "/projects").status_code == 200


def test_an_after_reset_on_create_service_leaves_the_service_behind(api, project, coolify_sim):
    """The case that makes a blind retry create a duplicate."""
    coolify_sim.add_fault(
        Fault(path=r"/api/v1/services", kind="reset", method="POST", phase="after")
    )

    with pytest.raises(httpx.TransportError):
        api("POST", "/services", json=service_body(project))

    [created] = coolify_sim.api.snapshot()["services"]
    assert created["name"] == "sim-service"
    retry = api("POST", "/services", json=service_body(project))
    assert retry.status_code == 409  # its own domain, now taken by the lost first attempt


def test_bad_faults_are_refused():
    with pytest.raises(ValueError):
        Fault(path="/x", kind="explode")
    with pytest.raises(ValueError):
        Fault(path="/x", kind="error", phase="during")


# --- control endpoints --------------------------------------------------------------------


def test_control_endpoints_work_over_http(api, coolify_sim, service):
    control = api.control

    state = control.get("/_sim/state")
    assert state.status_code == 200
    body = state.json()
    assert [s["uuid"] for s in body["services"]] == [service]
    assert [p["name"] for p in body["projects"]] == ["sim-project"]
    assert body["volumes"] == [] and body["containers"] == []  # never started
    assert body["faults"] == [] and body["fired"] == []
    assert body["call_count"] >= 2

    added = control.post(
        "/_sim/faults",
        json={"path": r"/api/v1/servers", "kind": "error", "method": "GET", "status": 502},
    )
    assert added.status_code == 201
    assert added.json()["faults"][0]["status"] == 502
    assert control.post("/_sim/faults", json={"path": "/x", "kind": "nope"}).status_code == 400
    assert api("GET", "/servers").status_code == 502
    assert control.get("/_sim/state").json()["fired"][0]["path"] == "/api/v1/servers"
    control.post("/_sim/faults", json={"path": r"/api/v1/servers", "kind": "error"})
    assert control.delete("/_sim/faults").json() == {"faults": []}
    assert api("GET", "/servers").status_code == 200

    config = control.post(
        "/_sim/config",
        json={"rate_limit_per_minute": 50, "start_seconds": 2.5, "delete_seconds": 0.25},
    )
    assert config.status_code == 200
    assert config.json()["rate_limit_per_minute"] == 50
    assert config.json()["timings"]["start_seconds"] == 2.5
    assert coolify_sim.api.timings.delete_seconds == 0.25
    noisy = control.post("/_sim/config", json={"noise_seed": 3, "refresh_seconds": 2})
    assert noisy.json()["noise_seed"] == 3 and noisy.json()["timings"]["refresh_seconds"] == 2
    assert control.post("/_sim/config", json={"noise_seed": None}).json()["noise_seed"] is None
    assert api("GET", "/projects").headers["X-RateLimit-Limit"] == "50"

    token = control.post(
        "/_sim/tokens", json={"token": "http-reader", "abilities": ["read"], "user": "reader"}
    )
    assert token.status_code == 201
    assert api("GET", "/projects", token="http-reader").status_code == 200
    assert api("POST", "/projects", token="http-reader", json={"name": "abc"}).status_code == 403

    reset = control.post("/_sim/reset")
    assert reset.status_code == 200
    after = control.get("/_sim/state").json()
    assert after["services"] == [] and after["projects"] == [] and after["volumes"] == []
    assert after["faults"] == [] and after["fired"] == []
    assert api("GET", "/servers").json()[0]["uuid"] == SERVER_UUID  # the server comes back

    assert control.get("/_sim/nothing").status_code == 404


def test_control_endpoints_bypass_faults(api, coolify_sim):
    coolify_sim.add_fault(Fault(path=r".*", kind="error", times=None))

    assert api.control.get("/_sim/state").status_code == 200
    assert api("GET", "/projects").status_code == 500


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {SIM_TOKEN}", "Bearer http-reader", "Bearer"],
)
def test_control_endpoints_need_the_simulators_token(api, coolify_sim, authorization):
    """The state holds env values (API keys, bot tokens): no token, no state, no control.
    An API token the simulator accepts on /api (here one with `read`) is not enough."""
    coolify_sim.api.add_token("http-reader", {"read"}, "reader")
    headers = {} if authorization is None else {"Authorization": authorization}

    for method, path in [
        ("GET", "/_sim/state"),
        ("POST", "/_sim/faults"),
        ("DELETE", "/_sim/faults"),
        ("POST", "/_sim/tokens"),
        ("POST", "/_sim/config"),
        ("POST", "/_sim/reset"),
        ("GET", "/_sim/nothing"),
    ]:
        response = api.http.request(
            method, path, headers=headers, json={"token": "mine", "path": ".*", "kind": "error"}
        )
        assert response.status_code == 401, (method, path)
        assert response.json() == {"message": "Unauthenticated."}
    assert coolify_sim.faults == [] and "mine" not in coolify_sim.api.tokens
    assert api.control.get("/_sim/state").status_code == 200


def test_the_echo_fault_quotes_the_request(api, coolify_sim, project):
    """A remote that echoes what it was sent: body, values (base64 decoded) and the token."""
    coolify_sim.add_fault(Fault(path=r"/api/v1/services", kind="echo", method="POST", status=422))

    response = api("POST", "/services", json=service_body(project))

    assert response.status_code == 422
    body = response.json()
    assert SIM_TOKEN in body["message"] and project in body["message"]
    assert body["errors"]["docker_compose_raw.decoded"] == [f"Could not parse: {COMPOSE}"]
    assert body["errors"]["urls.0.url"] == ["The urls.0.url field is invalid: https://web.sim.test"]
    assert coolify_sim.api.snapshot()["services"] == []  # refused before it was carried out


def test_config_latency_is_applied(api, coolify_sim):
    api.control.post("/_sim/config", json={"latency": 0.2})

    started = time.monotonic()
    api("GET", "/version")

    assert time.monotonic() - started >= 0.2


def test_without_configured_latency_a_call_is_fast(api):
    """latency=0 means no added latency. A regression guard: the handler once sent headers and
    body as two writes with Nagle's algorithm on, so every keep-alive answer waited ~40 ms for
    the client's delayed ACK (fixed with TCP_NODELAY in Handler.setup)."""
    api("GET", "/version")
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        api("GET", "/version")
        timings.append(time.perf_counter() - started)

    assert statistics.median(timings) < 0.02, f"median {statistics.median(timings) * 1000:.0f} ms"


# --- the management command -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(*args: str, **kwargs: Any) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_the_command_help_says_it_is_a_simulator():
    process = manage("coolify_simulator", "--help")
    out, err = process.communicate(timeout=60)

    assert process.returncode == 0, err
    assert "SIMULATED Coolify" in out and "not a real Coolify" in out
    assert "--token" in out and "--port" in out


def test_the_command_keeps_its_state_file_readable_by_its_owner_only(tmp_path):
    """The state file holds env values: written 0600, even over an older, wider file."""
    state_file = tmp_path / "coolify-simulator.json"
    state_file.write_text("{}")
    state_file.chmod(0o644)
    port = free_port()
    process = manage(
        "coolify_simulator", "--port", str(port), "--token", "t", "--state-file", str(state_file)
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the simulator printed nothing within 60 s"
        process.stdout.readline()
        created = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/projects",
            json={"name": "kept-project"},
            headers={"Authorization": "Bearer t", "Accept": "application/json"},
            timeout=5,
        )
        assert created.status_code == 201
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert state_file.stat().st_mode & 0o777 == 0o600
    projects = json.loads(state_file.read_text())["projects"]
    assert [p["name"] for p in projects.values()] == ["kept-project"]
    assert [p.name for p in tmp_path.iterdir()] == [state_file.name]  # no temporary file left


def test_save_state_creates_the_file_0600_whatever_the_umask(tmp_path):
    state_file = tmp_path / "data" / "state.json"
    previous = os.umask(0)
    try:
        save_state(state_file, {"envs": [{"value": "sk-secret"}]})
    finally:
        os.umask(previous)

    assert state_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(state_file.read_text()) == {"envs": [{"value": "sk-secret"}]}


def test_the_command_serves_and_says_it_is_a_simulator():
    port = free_port()
    process = manage("coolify_simulator", "--port", str(port), "--token", "t")
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the simulator printed nothing within 60 s"
        first_line = process.stdout.readline()

        assert "COOLIFY SIMULATOR" in first_line
        assert "not a real Coolify" in first_line
        assert f"127.0.0.1:{port}" in first_line
        response = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/version",
            headers={"Authorization": "Bearer t", "Accept": "application/json"},
            timeout=5,
        )
        assert response.text == "4.3.11"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
