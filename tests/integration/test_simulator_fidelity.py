"""The simulator behaves like Coolify 4.3.11's server code (not just its OpenAPI spec).

Each test pins one behaviour of the real code (the Coolify file is named in the test) on a
fake clock at unit speed: no sockets, no sleeping. SimulatedCoolify.handle() is called
directly; every call replays the jobs due by the clock first.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from stacks.coolify_simulator import naming, statuses
from stacks.coolify_simulator.api import SERVER_UUID, SimulatedCoolify, Timings

pytestmark = pytest.mark.integration

TOKEN = "fidelity-token"

# One app with a healthcheck, one without, one database (redis → ServiceDatabase).
STACK = """\
services:
  web:
    image: nginx:1.27
    container_name: my-own-name
    environment:
      - SERVICE_URL_WEB_80
      - GREETING=${GREETING:-hello}
    volumes:
      - cf-agent-acme_bot1-data:/data
      - ./config:/etc/web
    healthcheck:
      test: ["CMD", "true"]
  worker:
    image: busybox
    healthcheck:
      test: ["CMD", "true"]
  cache:
    image: redis:7
volumes:
  cf-agent-acme_bot1-data: {}
"""
HEALTHY_STACK = """\
services:
  web:
    image: nginx:1.27
    environment:
      - SERVICE_URL_WEB_80
    healthcheck:
      test: ["CMD", "true"]
"""
PLAIN_STACK = """\
services:
  app:
    image: busybox
"""


class FakeClock:
    def __init__(self, t: float = 1000.5) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


class Sim:
    """A simulator on a fake clock, with small helpers."""

    def __init__(self, *, noise_seed: int | None = None, rate_limit: int = 0, **timings: float):
        defaults = {
            "queue_seconds": 1.0,
            "start_seconds": 3.0,
            "stop_seconds": 2.0,
            "save_seconds": 1.0,
            "delete_seconds": 1.0,
            "refresh_seconds": 10.0,  # checks at …, 1000, 1010, 1020 …
            "health_seconds": 0.0,
        }
        self.clock = FakeClock()
        self.api = SimulatedCoolify(
            timings=Timings(**{**defaults, **timings}),
            clock=self.clock,
            noise_seed=noise_seed,
            rate_limit_per_minute=rate_limit,
        )
        self.api.add_token(TOKEN, {"root"})
        self.project = self.call("POST", "/projects", {"name": "fidelity"})[1]["uuid"]

    def call(
        self, method: str, path: str, body: Any = None, token: str = TOKEN
    ) -> tuple[int, Any, dict[str, str]]:
        response = self.api.handle(
            method,
            "/api/v1" + path,
            {"authorization": f"Bearer {token}", "content-type": "application/json"},
            json.dumps(body).encode() if body is not None else b"",
        )
        return response.status, response.body, response.headers

    def create(self, compose: str = STACK, **extra: Any) -> str:
        status, body, _ = self.call("POST", "/services", self.body(compose, **extra))
        assert status == 201, body
        return body["uuid"]

    def body(self, compose: str = STACK, **extra: Any) -> dict[str, Any]:
        return {
            "project_uuid": self.project,
            "server_uuid": SERVER_UUID,
            "environment_name": "production",
            "docker_compose_raw": base64.b64encode(compose.encode()).decode(),
            **extra,
        }

    def service(self, uuid: str) -> dict[str, Any]:
        return self.call("GET", f"/services/{uuid}")[1]

    def status(self, uuid: str) -> str:
        return self.service(uuid)["status"]

    def at(self, t: float) -> None:
        self.clock.t = t

    def running(self, compose: str = HEALTHY_STACK) -> str:
        """A service started at 1000.5 and checked at 1010: running from 1010."""
        uuid = self.create(compose)
        assert self.call("POST", f"/services/{uuid}/start")[0] == 200
        self.at(1010.5)
        return uuid


# --- lifecycle sequences (app/Actions/Service/*.php, app/Models/Service.php) ----------------


def test_restart_reads_running_exited_starting_exited_running():
    """RestartService → StartService(stopBeforeStart): StopService writes `exited`, the compose
    Activity reads starting:unhealthy, then the rows still say exited until the next check."""
    sim = Sim()
    uuid = sim.running()
    assert sim.status(uuid) == "running:healthy"
    old_logs = sim.call("GET", f"/services/{uuid}/logs?sub_service_name=web")[1]["logs"]

    status, body, _ = sim.call("POST", f"/services/{uuid}/restart")
    assert (status, body) == (200, {"message": "Service restarting request queued."})
    seen = {}
    for t in (1011.0, 1012.5, 1014.0, 1015.0, 1017.0, 1018.0, 1019.9, 1020.5):
        sim.at(t)
        seen[t] = sim.status(uuid)

    assert seen == {
        1011.0: "running:healthy",  # queued (1 s)
        1012.5: "running:healthy",  # docker stop running (2 s)
        1014.0: "exited",  # StopService: rows → exited; saveComposeConfigs (1 s)
        1015.0: "starting:unhealthy",  # the Activity is queued for the compose run (3 s)
        1017.0: "starting:unhealthy",
        1018.0: "exited",  # Activity finished; no check yet
        1019.9: "exited",
        1020.5: "running:healthy",  # the check at 1020
    }
    new_logs = sim.call("GET", f"/services/{uuid}/logs?sub_service_name=web")[1]["logs"]
    assert old_logs.count("Starting") == new_logs.count("Starting") == 1  # a new container


def test_restart_with_latest_has_no_exited_phase():
    # StartService.php:79-82: pullLatestImages → no StopService.
    sim = Sim()
    uuid = sim.running()
    sim.call("POST", f"/services/{uuid}/restart?latest=true")
    seen = []
    for t in (1011.0, 1012.0, 1013.0, 1014.0, 1015.0, 1016.0):
        sim.at(t)
        seen.append(sim.status(uuid))

    assert "exited" not in seen
    assert seen[0] == "running:healthy" and "starting:unhealthy" in seen


def test_start_from_exited_reads_starting_then_exited_until_the_check():
    sim = Sim()
    uuid = sim.create(HEALTHY_STACK)
    assert sim.status(uuid) == "exited"  # service_applications.status defaults to exited

    assert sim.call("POST", f"/services/{uuid}/start")[1] == {
        "message": "Service starting request queued."
    }
    seen = []
    for t in (1001.0, 1002.0, 1003.0, 1005.0, 1006.0, 1009.9, 1010.0):
        sim.at(t)
        seen.append(sim.status(uuid))

    assert seen == [
        "exited",  # queued
        "exited",  # saving configs
        "starting:unhealthy",  # Activity queued (2.5 → 5.5)
        "starting:unhealthy",
        "exited",
        "exited",
        "running:healthy",
    ]


def test_a_service_without_healthchecks_reads_running_unknown():
    sim = Sim()
    uuid = sim.running(PLAIN_STACK)
    assert sim.status(uuid) == "running:unknown"


def test_start_on_running_and_stop_on_exited_are_400():
    sim = Sim()
    uuid = sim.create(HEALTHY_STACK)
    assert sim.call("POST", f"/services/{uuid}/stop")[:2] == (
        400,
        {"message": "Service is already stopped."},
    )
    sim.call("POST", f"/services/{uuid}/start")
    sim.at(1010.5)
    assert sim.call("POST", f"/services/{uuid}/start")[:2] == (
        400,
        {"message": "Service is already running."},
    )


def test_start_is_accepted_while_exited_after_a_start_and_queues_another():
    # action_deploy only refuses a status containing "running" (SC:2092-2106).
    sim = Sim()
    uuid = sim.create(HEALTHY_STACK)
    sim.call("POST", f"/services/{uuid}/start")
    sim.at(1006.0)  # finished, not checked: exited
    assert sim.call("POST", f"/services/{uuid}/start")[0] == 200


def test_stop_keeps_running_until_docker_stop_is_done_then_exited():
    sim = Sim()
    uuid = sim.running()
    assert sim.call("POST", f"/services/{uuid}/stop")[1] == {
        "message": "Service stopping request queued."
    }
    seen = {}
    for t in (1011.0, 1012.0, 1013.4, 1013.5):
        sim.at(t)
        seen[t] = sim.status(uuid)

    assert seen == {
        1011.0: "running:healthy",
        1012.0: "running:healthy",
        1013.4: "running:healthy",
        1013.5: "exited",  # StopService.php:52 — written directly, no check needed
    }
    assert sim.api.snapshot()["containers"] == []  # docker rm -f


def test_stop_during_a_start_cancels_the_activity_but_not_the_compose_run():
    # StopService.php:23-31 cancels queued Activities; the running compose is not killed.
    sim = Sim()
    uuid = sim.create(HEALTHY_STACK)
    sim.call("POST", f"/services/{uuid}/start")
    sim.at(1003.0)
    assert sim.status(uuid) == "starting:unhealthy"
    sim.call("POST", f"/services/{uuid}/stop")
    sim.at(1004.0)  # the stop job ran: the Activity is cancelled
    assert sim.status(uuid) == "exited"
    sim.at(1010.5)  # the compose run finished at 1005.5 and its containers run
    assert sim.status(uuid) == "running:healthy"


def test_delete_runs_after_the_queue_lag_stops_removes_volumes_then_404():
    sim = Sim()
    uuid = sim.running(STACK)
    volume = f"{uuid}_cf-agent-acme-bot1-data"
    assert volume in sim.api.snapshot()["volumes"]

    assert sim.call("DELETE", f"/services/{uuid}")[1] == {
        "message": "Service deletion request queued."
    }
    assert sim.call("DELETE", f"/projects/{sim.project}")[0] == 400  # still has resources
    sim.at(1012.0)  # job started (1011.5), docker stop until 1013.5
    assert sim.status(uuid).startswith(("running", "degraded", "starting"))
    assert sim.api.snapshot()["services"][0]["deleting"] is True
    sim.at(1014.0)
    assert sim.status(uuid) == "exited"
    assert volume not in sim.api.snapshot()["volumes"]
    sim.at(1014.5)
    assert sim.call("GET", f"/services/{uuid}")[:2] == (404, {"message": "Service not found."})
    assert sim.call("DELETE", f"/projects/{sim.project}")[0] == 200
    assert sim.api.snapshot()["deleted_services"][0]["delete_volumes"] is True


def test_delete_volumes_false_keeps_the_volumes():
    sim = Sim()
    uuid = sim.running(STACK)
    sim.call("DELETE", f"/services/{uuid}?delete_volumes=false")
    sim.at(1030.0)
    assert sim.api.snapshot()["volumes"] == [f"{uuid}_cf-agent-acme-bot1-data"]


def test_a_healthcheck_still_starting_is_stored_as_running_healthy():
    """GetContainersStatus stores `running:starting`; aggregateFromStrings sees `running` but
    neither `unhealthy` nor `unknown`: running:healthy."""
    sim = Sim(health_seconds=30.0)
    uuid = sim.running()
    assert sim.status(uuid) == "running:healthy"
    [container] = sim.api.lifecycle.containers.values()

    assert container["health"] == "starting"
    assert sim.service(uuid)["applications"][0]["status"] == "running:healthy"
    assert sim.status(uuid) == "running:healthy"


def test_the_service_list_omits_sub_resources_while_starting():
    # Service::getStatusAttribute returns early while isStarting(), before loading relations.
    sim = Sim()
    uuid = sim.create(HEALTHY_STACK)
    listed = sim.call("GET", "/services")[1][0]
    assert "applications" in listed and "databases" in listed
    sim.call("POST", f"/services/{uuid}/start")
    sim.at(1003.0)
    [listed] = sim.call("GET", "/services")[1]
    assert listed["status"] == "starting:unhealthy"
    assert "applications" not in listed and "databases" not in listed
    assert "applications" in sim.service(uuid)  # GET one always loads them


def test_stored_statuses_only_change_at_a_check():
    sim = Sim()
    uuid = sim.running()
    sim.at(1015.0)
    [web] = sim.service(uuid)["applications"]
    sim.api.lifecycle.containers[f"web-{uuid}"]["state"] = "exited"  # the container died
    sim.at(1019.9)
    assert sim.status(uuid) == "running:healthy"
    sim.at(1020.0)
    assert sim.status(uuid) == "exited"
    assert sim.service(uuid)["applications"][0]["last_online_at"] != web["last_online_at"]


# --- the aggregator (app/Services/ContainerStatusAggregator.php) ----------------------------


@pytest.mark.parametrize(
    ("strings", "expected"),
    [
        ([], "exited"),
        (["running:healthy", "degraded:unhealthy"], "degraded:unhealthy"),
        (["running:healthy", "restarting:unknown"], "degraded:unhealthy"),
        (["running:healthy", "exited"], "degraded:unhealthy"),
        (["running:healthy", "created:unknown"], "starting:unknown"),
        (["running:healthy", "starting:unknown"], "starting:unknown"),
        (["running:healthy", "running:unhealthy", "running:unknown"], "running:unhealthy"),
        (["running:healthy", "running:unknown"], "running:unknown"),
        (["running:healthy", "running:starting"], "running:healthy"),
        (["dead:unknown", "exited"], "degraded:unhealthy"),
        (["removing:unknown"], "degraded:unhealthy"),
        (["paused:unknown", "exited"], "paused:unknown"),
        (["created:unknown", "exited"], "starting:unknown"),
        (["exited", "exited"], "exited"),
    ],
)
def test_aggregate_from_strings_priorities(strings, expected):
    assert statuses.aggregate_from_strings(strings) == expected


def test_restarting_is_kept_per_sub_resource():
    assert statuses.aggregate_from_strings(["restarting:unknown"], preserve_restarting=True) == (
        "restarting:unknown"
    )
    assert statuses.aggregate_from_strings(["exited"], max_restart_count=2) == "degraded:unhealthy"


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ([{"status": "exited"}, {"status": "exited"}], "exited"),
        ([], "unknown:unknown:excluded"),
        ([{"status": "running:healthy:excluded"}], "running:healthy:excluded"),
        (
            [{"status": "running:healthy"}, {"status": "exited", "exclude_from_status": True}],
            "running:healthy",
        ),
        ([{"status": "exited", "exclude_from_status": True}], "exited"),
    ],
)
def test_service_status_with_excluded_sub_resources(resources, expected):
    assert statuses.service_status(False, resources) == expected
    assert statuses.service_status(True, resources) == "starting:unhealthy"


def test_excluded_containers_store_the_excluded_suffix():
    assert statuses.sub_resource_status(["running:healthy"], excluded=True) == (
        "running:healthy:excluded"
    )
    assert statuses.sub_resource_status(["created:unknown"], excluded=True) == "starting:excluded"
    assert statuses.sub_resource_status(["exited"], excluded=True) == "exited"


def test_a_restart_no_container_makes_the_service_excluded():
    sim = Sim()
    uuid = sim.running("services:\n  job:\n    image: busybox\n    restart: 'no'\n")
    assert sim.status(uuid) == "running:unknown:excluded"


# --- names (bootstrap/helpers/parsers.php, Str::slug) ----------------------------------------


@pytest.mark.parametrize(
    ("source", "slugged"),
    [
        ("cf-agent-acme_bot1-data", "cf-agent-acme-bot1-data"),
        ("My.Vol", "myvol"),
        ("data", "data"),
        ("a__b--c", "a-b-c"),
        ("mail@host", "mail-at-host"),
        ("  Spaced Out  ", "spaced-out"),
        ("_lead_trail_", "lead-trail"),
        ("path/to", "pathto"),
        ("Café", "cafe"),
    ],
)
def test_str_slug(source, slugged):
    assert naming.slug(source) == slugged


def test_containers_and_volumes_are_named_like_coolify():
    sim = Sim()
    uuid = sim.running(STACK)
    state = sim.api.snapshot()

    # parsers.php:2080 — "<compose service>-<uuid>", container_name: ignored (:2720).
    assert state["containers"] == sorted(f"{name}-{uuid}" for name in ("web", "worker", "cache"))
    assert state["volumes"] == [f"{uuid}_cf-agent-acme-bot1-data"]
    compose = sim.service(uuid)["docker_compose"]
    assert f"container_name: web-{uuid}" in compose and "my-own-name" not in compose
    assert f"/data/coolify/services/{uuid}/config:/etc/web" in compose  # bind mount
    [service] = state["services"]
    assert [d["name"] for d in service["databases"]] == ["cache"]  # redis is a database
    assert [a["name"] for a in service["applications"]] == ["web", "worker"]


# --- urls and SERVICE_URL_* (SC:117-199, parsers.php:1775-1914) -----------------------------


def _fqdn(sim: Sim, uuid: str, name: str = "web") -> str | None:
    [app] = [a for a in sim.service(uuid)["applications"] if a["name"] == name]
    return app["fqdn"]


def test_a_service_url_key_generates_an_sslip_fqdn_and_the_four_env_vars():
    sim = Sim()
    uuid = sim.create(STACK)
    host = f"web-{uuid}.127.0.0.1.sslip.io"

    assert _fqdn(sim, uuid) == f"http://{host}:80"
    envs = sim.api.snapshot()["services"][0]["envs"]
    assert envs["SERVICE_URL_WEB"] == f"http://{host}"
    assert envs["SERVICE_FQDN_WEB"] == host
    assert envs["SERVICE_URL_WEB_80"] == f"http://{host}:80"
    assert envs["SERVICE_FQDN_WEB_80"] == f"{host}:80"
    assert envs["GREETING"] == "hello"


def test_urls_set_normalise_and_keep_unnamed_apps():
    sim = Sim()
    uuid = sim.create(STACK, urls=[{"name": "worker", "url": " HTTPS://Worker.Example.COM/x "}])
    assert _fqdn(sim, uuid, "worker") == "https://worker.example.com/x"
    generated = _fqdn(sim, uuid, "web")

    status, body, _ = sim.call(
        "PATCH", f"/services/{uuid}", {"urls": [{"name": "worker", "url": "https://w.test"}]}
    )
    assert (status, body["domains"]) == (200, sorted([generated, "https://w.test"]))
    assert _fqdn(sim, uuid, "web") == generated  # not named: kept


def test_an_empty_url_clears_the_fqdn_and_the_next_parse_regenerates_it():
    sim = Sim()
    uuid = sim.create(STACK)
    generated = _fqdn(sim, uuid)

    sim.call("PATCH", f"/services/{uuid}", {"urls": [{"name": "web", "url": ""}]})
    assert _fqdn(sim, uuid) is None  # "" → null → fqdn cleared (after parse ran)
    envs = sim.api.snapshot()["services"][0]["envs"]
    assert envs["SERVICE_URL_WEB_80"] == generated  # env vars are not touched

    sim.call("PATCH", f"/services/{uuid}", {"name": "renamed"})  # parse() on every PATCH
    assert _fqdn(sim, uuid) == generated


def test_the_key_form_vars_follow_a_url_set_through_urls():
    sim = Sim()
    uuid = sim.create(STACK, urls=[{"name": "web", "url": "https://web.example.com"}])
    sim.call("PATCH", f"/services/{uuid}", {"name": "again"})
    envs = sim.api.snapshot()["services"][0]["envs"]
    assert envs["SERVICE_URL_WEB_80"] == "https://web.example.com:80"
    assert envs["SERVICE_FQDN_WEB"] == "web.example.com"


def test_url_errors_are_a_422_list_and_nothing_is_created():
    sim = Sim()
    urls = [
        {"name": "web", "url": "a.com,ftp://x.test"},
        {"name": "web", "url": "https://ok.test;rm"},
    ]
    status, body, _ = sim.call("POST", "/services", sim.body(urls=urls))
    assert status == 422
    assert body == {
        "message": "Validation failed.",
        "errors": [
            "Invalid URL: a.com",
            "Invalid URL: ftp://x.test",
            "Invalid URL: https://ok.test;rm",
        ],
    }
    assert sim.api.snapshot()["services"] == []


def test_duplicates_and_unknown_names_and_databases():
    sim = Sim()
    twice = [{"name": "web", "url": "https://a.test"}, {"name": "worker", "url": "https://a.test"}]
    status, body, _ = sim.call("POST", "/services", sim.body(urls=twice))
    assert (status, body["errors"]) == (
        422,
        [
            "The current request contains conflicting URLs across containers: https://a.test. "
            "Use force_domain_override=true to proceed."
        ],
    )
    status, body, _ = sim.call(
        "POST", "/services", sim.body(urls=[{"name": "cache", "url": "https://c.test"}])
    )
    assert body["errors"] == ["Service container with 'cache' not found."]  # a database
    status, body, _ = sim.call(
        "POST", "/services", sim.body(urls=[{"name": "web", "url": "x", "port": 1}])
    )
    assert body["errors"] == {
        "urls.0": [
            "An item in the urls array has invalid fields. Only name and url fields are supported."
        ]
    }


def test_a_conflict_is_409_with_the_stored_url_and_app_uuid():
    sim = Sim()
    first = sim.create(STACK, urls=[{"name": "web", "url": "https://taken.test"}])
    [web] = [a for a in sim.service(first)["applications"] if a["name"] == "web"]

    status, body, _ = sim.call(
        "POST", "/services", sim.body(name="b", urls=[{"name": "web", "url": "https://taken.test"}])
    )
    assert status == 409
    assert body["conflicts"] == [
        {
            "domain": "https://taken.test",
            "resource_name": sim.service(first)["name"],
            "resource_uuid": web["uuid"],
            "resource_type": "service",
            "message": f"Domain https://taken.test is already in use by service "
            f"'{sim.service(first)['name']}'",
        }
    ]
    # Scheme and port count: the compare is exact.
    other = sim.body(name="c", urls=[{"name": "web", "url": "http://taken.test"}])
    assert sim.call("POST", "/services", other)[0] == 201


# --- creating services (SC:360-770) and projects (ValidationPatterns) ------------------------


def test_service_name_and_description_rules():
    sim = Sim()
    status, body, _ = sim.call("POST", "/services", sim.body(name=""))
    assert (status, body["errors"]) == (422, {"name": ["The name field must be a string."]})
    status, body, _ = sim.call("POST", "/services", sim.body(name="x" * 256))
    assert body["errors"] == {"name": ["The name field must not be greater than 255 characters."]}
    status, body, _ = sim.call("POST", "/services", sim.body(connect_to_docker_network=True))
    assert body["errors"] == {"connect_to_docker_network": ["This field is not allowed."]}

    uuid = sim.create(name="  <b>Bold</b> name: #1 ", description=None)
    service = sim.service(uuid)
    assert service["name"] == "Bold name: #1"  # trimmed, tags stripped, no pattern check
    assert service["description"] == ""  # strip_tags(null)
    assert sim.service(sim.create())["name"].startswith("service-")


def test_invalid_yaml_is_a_500_and_no_services_a_422():
    sim = Sim()
    status, body, _ = sim.call("POST", "/services", sim.body("services: [unclosed"))
    assert (status, body) == (500, {"message": "Server Error"})
    status, body, _ = sim.call("POST", "/services", sim.body("volumes: {}\n"))
    assert body["errors"] == {
        "docker_compose_raw": 'Docker Compose file must contain a "services" section'
    }
    status, body, _ = sim.call("POST", "/services", sim.body("services:\n  a;b:\n    image: x\n"))
    assert body["errors"]["docker_compose_raw"].startswith(
        "Invalid Docker Compose service name: Invalid service name: contains forbidden "
        "character ';' (command separator)."
    )


def test_project_description_with_a_colon_is_refused_with_the_exact_message():
    sim = Sim()
    status, body, _ = sim.call("POST", "/projects", {"name": "ok", "description": "a: b"})
    assert status == 422
    assert body["errors"] == {
        "name": ["The name must be at least 3 characters."],
        "description": [
            "The description may only contain letters (including Unicode), numbers, spaces, "
            "and common punctuation: - _ . , ! ? ( ) ' \" + = * / @ &"
        ],
    }
    status, body, _ = sim.call("POST", "/projects", {"name": "bad;name"})
    assert body["errors"] == {
        "name": [
            "The name may only contain letters (including Unicode), numbers, spaces, and these "
            "characters: - _ . / @ & ( ) # , : +"
        ]
    }
    assert sim.call("POST", "/projects", {"name": "   "})[1]["errors"] == {
        "name": ["The name field is required."]
    }
    assert sim.call("POST", "/projects", {"name": "x" * 256})[1]["errors"] == {
        "name": ["The name may not be greater than 255 characters."]
    }


def test_project_names_allow_unicode_and_are_trimmed():
    sim = Sim()
    status, body, _ = sim.call(
        "POST", "/projects", {"name": "  Équipe ñ: #2 (ü) ", "description": "Ça va?"}
    )
    assert status == 201
    project = sim.call("GET", f"/projects/{body['uuid']}")[1]
    assert (project["name"], project["description"]) == ("Équipe ñ: #2 (ü)", "Ça va?")
    status, body, _ = sim.call("PATCH", f"/projects/{body['uuid']}", {"description": "a#b"})
    assert status == 422 and "description" in body["errors"]


# --- env vars (app/Models/EnvironmentVariable.php, SC:1597-1654) ----------------------------


def test_env_values_are_trimmed_and_real_value_quoted():
    sim = Sim()
    uuid = sim.create(PLAIN_STACK)
    data = [
        {"key": "  PLAIN ", "value": "  a\"b'c\\d \n"},
        {"key": "LITERAL", "value": " $x y ", "is_literal": True},
        {"key": "MULTI", "value": "l1\nl2", "is_multiline": True},
        {"key": "JSON", "value": '{"a": "b"}'},
        {"key": "SHARED", "value": "{{project.DB_URL}}"},
        {"key": "EMPTY", "value": "   "},
        {"key": "ONCE", "value": "secret", "is_shown_once": True},
    ]
    status, _, _ = sim.call("PATCH", f"/services/{uuid}/envs/bulk", {"data": data})
    assert status == 201
    envs = {e["key"]: e for e in sim.call("GET", f"/services/{uuid}/envs")[1]}

    assert envs["PLAIN"]["value"] == "a\"b'c\\d"
    assert envs["PLAIN"]["real_value"] == "a\\\"b\\'c\\\\d"
    assert envs["LITERAL"]["real_value"] == "'$x y'"
    assert envs["MULTI"]["real_value"] == "'l1\nl2'"
    assert envs["JSON"]["real_value"] == '{"a": "b"}'
    assert envs["SHARED"]["real_value"] == "{{project.DB_URL}}"  # unknown shared var: literal
    assert "value" not in envs["EMPTY"] and envs["EMPTY"]["real_value"] == ""  # "" → null
    assert "value" not in envs["ONCE"] and "real_value" not in envs["ONCE"]
    assert envs["PLAIN"]["is_coolify"] is False


def test_bulk_keeps_a_missing_value_and_stops_at_the_first_bad_item():
    sim = Sim()
    uuid = sim.create(PLAIN_STACK)
    sim.call("PATCH", f"/services/{uuid}/envs/bulk", {"data": [{"key": "A", "value": "1"}]})

    status, body, _ = sim.call(
        "PATCH",
        f"/services/{uuid}/envs/bulk",
        {"data": [{"key": "A", "is_preview": True}, {"key": "9x"}, {"key": "B", "value": "2"}]},
    )
    assert (status, body) == (
        422,
        {"message": "Validation failed.", "errors": {"key": ["The key field format is invalid."]}},
    )
    envs = {e["key"]: e for e in sim.call("GET", f"/services/{uuid}/envs")[1]}
    assert envs["A"]["value"] == "1" and envs["A"]["is_preview"] is True  # whole item saved
    assert "B" not in envs
    _, body, _ = sim.call("PATCH", f"/services/{uuid}/envs/bulk", {"data": [{"value": "x"}]})
    assert body["errors"] == {"key": ["This field is required."]}
    _, body, _ = sim.call(
        "PATCH", f"/services/{uuid}/envs/bulk", {"data": [{"key": "C", "value": 5}]}
    )
    assert body["errors"] == {"value": ["The value field must be a string."]}


# --- logs (SC:918-960) -----------------------------------------------------------------------


def test_logs_errors_and_options():
    sim = Sim()
    uuid = sim.create("services:\n  My_App:\n    image: busybox\n  web:\n    image: nginx\n")

    def logs(query: str) -> tuple[int, Any]:
        return sim.call("GET", f"/services/{uuid}/logs{query}")[:2]

    assert logs("") == (400, {"message": "Sub service name is required."})
    assert logs("?sub_service_name=%20%20") == (400, {"message": "Sub service name is required."})
    assert logs("?sub_service_name=web") == (404, {"message": "Container not found."})  # never run
    sim.call("POST", f"/services/{uuid}/start")
    sim.at(1010.5)
    assert logs("?sub_service_name=nope") == (404, {"message": "Container not found."})
    # The coolify.name label is slugged: the compose name itself no longer matches …
    assert logs("?sub_service_name=My_App") == (404, {"message": "Container not found."})
    assert logs("?sub_service_name=my-app")[0] == 200  # … but its slug does
    status, body = logs("?sub_service_name=web&show_timestamps=true&lines=1")
    assert status == 200 and body["logs"].count("\n") == 0
    stamp = body["logs"].split(" ", 1)[0]
    assert stamp.endswith("Z") and len(stamp.split(".")[1]) == 10  # RFC3339Nano, 9 digits
    assert "\n" in logs("?sub_service_name=web&lines=999999")[1]["logs"]  # capped, not refused
    assert not logs("?sub_service_name=web&show_timestamps=false")[1]["logs"].startswith("20")

    sim.api.lifecycle.containers[f"web-{uuid}"]["state"] = "exited"
    assert logs("?sub_service_name=web") == (400, {"message": "Container is not running."})
    sim.call("POST", f"/services/{uuid}/stop")
    sim.at(1020.0)
    assert logs("?sub_service_name=web") == (404, {"message": "Container not found."})  # rm -f


# --- middleware and the rate limiter ---------------------------------------------------------


def test_strings_are_trimmed_and_empty_strings_become_null_everywhere():
    sim = Sim()
    uuid = sim.create(PLAIN_STACK)
    sim.call(
        "PATCH",
        f"/services/{uuid}/envs/bulk",
        {"data": [{"key": "K", "value": "\u200b v \n", "comment": "  "}]},
    )
    [env] = [e for e in sim.call("GET", f"/services/{uuid}/envs")[1] if e["key"] == "K"]
    assert env["value"] == "v" and "comment" not in env  # comment "  " → null


def test_the_rate_limit_is_a_fixed_window_from_the_first_hit():
    sim = Sim(rate_limit=3)
    sim.api.add_token("other", {"read"}, user="root")  # same user: shared budget
    sim.api.limiter.windows.clear()
    sim.at(0.0)
    remaining = [sim.call("GET", "/projects")[2]["X-RateLimit-Remaining"] for _ in range(2)]
    sim.at(10.0)
    assert sim.call("POST", "/projects", {"name": "abc"}, token="other")[0] == 403  # counted
    assert remaining == ["2", "1"]
    assert sim.call("GET", "/projects", token="bad")[0] == 401  # not counted
    sim.at(30.0)
    status, body, headers = sim.call("GET", "/projects")
    assert (status, body) == (429, {"message": "Too Many Attempts."})
    assert headers["Retry-After"] == "30" and headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Reset" in headers
    sim.at(59.9)
    assert sim.call("GET", "/projects")[0] == 429  # refused calls are not counted
    sim.at(60.0)  # a new window from this hit: three more calls, whatever came before
    assert [sim.call("GET", "/projects")[0] for _ in range(4)] == [200, 200, 200, 429]
    assert sim.call("GET", "/projects")[2]["Retry-After"] == "60"


# --- noise -----------------------------------------------------------------------------------


def _noisy_run(seed: int | None) -> list[str]:
    sim = Sim(noise_seed=seed, start_seconds=4.0, refresh_seconds=3.0, stop_seconds=3.0)
    uuid = sim.create(STACK)
    sim.call("POST", f"/services/{uuid}/start")
    seen = []
    for step in range(40):
        sim.at(1000.5 + step * 0.5)
        seen.append(sim.status(uuid))
    sim.call("POST", f"/services/{uuid}/restart")
    for step in range(40):
        sim.at(1020.5 + step * 0.5)
        seen.append(sim.status(uuid))
    return seen


def test_noise_is_reproducible_by_seed_and_off_without_one():
    assert _noisy_run(7) == _noisy_run(7)
    assert _noisy_run(None) == _noisy_run(None)
    mixed = {"degraded:unhealthy", "starting:unknown"}
    assert not mixed & set(_noisy_run(None))
    runs = {seed: _noisy_run(seed) for seed in range(12)}
    assert any(mixed & set(run) for run in runs.values())  # a check caught a half-up stack
    assert len({tuple(run) for run in runs.values()}) > 1


# --- persistence -----------------------------------------------------------------------------


def test_export_settles_pending_jobs_and_import_restores():
    sim = Sim()
    uuid = sim.create(STACK)
    sim.call("POST", f"/services/{uuid}/start")
    gone = sim.create(PLAIN_STACK, name="gone")
    sim.call("DELETE", f"/services/{gone}")

    data = sim.api.export_state()
    fresh = Sim()
    fresh.api.import_state(data)

    state = fresh.api.snapshot()
    assert [s["uuid"] for s in state["services"]] == [uuid]
    assert state["services"][0]["status"] == "running:unknown"  # started, checked
    assert f"web-{uuid}" in state["containers"]
    assert state["volumes"] == [f"{uuid}_cf-agent-acme-bot1-data"]
