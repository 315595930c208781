"""Coolify's HTTP API (v4), as much of it as cfadmin uses. HTTP only: no Django, no ORM.

Notes that shaped it (../shared/coolify/API-NOTES.md): always `Accept: application/json`;
start/stop/restart are POST; a service's compose goes in as strict base64; delete defaults all
four destroy flags to true and works in the background, so we send them explicitly and re-read;
env vars are set with the bulk upsert (parsing the compose already created the keys).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from stacks.clients.errors import (
    AlreadyInState,
    ClientError,
    NotFound,
    PermissionDenied,
)
from stacks.clients.http import JsonHttpClient
from stacks.clients.pacing import PRIORITIES, RatePacer, pacer_for

API = "/api/v1"
MISSING_ABILITY = re.compile(r"Missing required permissions: (?P<ability>[\w:]+)")


class MissingAbility(PermissionDenied):
    """403 because the token lacks an ability (read, write, deploy, read:sensitive, root)."""

    @property
    def ability(self) -> str:
        match = MISSING_ABILITY.search(self.message)
        return match.group("ability") if match else ""


class CoolifyClient(JsonHttpClient):
    service = "Coolify"
    # Names, uuids and domains may come back in errors ("Domain … is already in use"); env
    # values and the compose file never do (clients/http.py scrubs them).
    public_fields = frozenset(
        {"name", "description", "project_uuid", "server_uuid", "environment_name", "urls", "key"}
    )
    base64_fields = frozenset({"docker_compose_raw"})

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        pacer: RatePacer | None = None,
        priority: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url, **kwargs)
        self._token = token
        self._version: tuple[int, ...] | None = None
        # Coolify's API limit (throttle:api, 200/min by default) is per user, shared by every
        # client and process using the token: one pacer per URL and token in this process.
        self.pacer = pacer or pacer_for(self.base_url, token)
        # INTERACTIVE or BACKGROUND (clients/pacing.py): the reserve its calls leave, unless
        # the caller's `pacing.calls_as` says otherwise.
        if priority is not None:
            if priority not in PRIORITIES:
                raise ValueError(f"priority must be one of {PRIORITIES}, not {priority!r}")
            self.priority = priority

    def __repr__(self) -> str:  # never the token
        return f"CoolifyClient({self.base_url!r})"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def error_class(self, status: int, message: str) -> type[ClientError]:
        if status == 403 and MISSING_ABILITY.search(message):
            return MissingAbility
        if status == 400 and message.startswith("Service is already"):
            return AlreadyInState
        return super().error_class(status, message)

    # --- health and version ----------------------------------------------------------------

    def version(self) -> str:
        """`4.3.11`: plain text, not JSON. Needs the `read` ability (so it checks the token)."""
        return self.request("GET", f"{API}/version", idempotent=True).text.strip().strip('"')

    def version_tuple(self) -> tuple[int, ...]:
        """The version, comparable (`4.0.0-beta.474` < `4.3.11`); read once per client."""
        if self._version is None:
            self._version = parse_version(self.version())
        return self._version

    def require_version(self, minimum: tuple[int, ...], feature: str) -> None:
        """Refuse early, with a clear message, what this Coolify cannot do (API-NOTES §8)."""
        if self.version_tuple() < minimum:
            raise ClientError(
                f"Coolify {format_version(self.version_tuple())} is too old for {feature}: "
                f"cfadmin needs {format_version(minimum)} or newer",
                service=self.service,
            )

    def healthy(self) -> bool:
        """Not paced: `api/health` has its own limit (1000/min by IP, RouteServiceProvider.php),
        and its headers would describe that counter, not the token's budget."""
        response = self.request("GET", "/api/health", idempotent=True, pace=False)
        return response.text.strip() == "OK"

    # --- projects --------------------------------------------------------------------------

    def list_projects(self) -> list[dict[str, Any]]:
        return self.request("GET", f"{API}/projects", idempotent=True).json()

    def find_project(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.list_projects() if p.get("name") == name), None)

    def get_project(self, uuid: str) -> dict[str, Any]:
        """The project with its `environments` (each with id, uuid and name)."""
        return self.request("GET", f"{API}/projects/{uuid}", idempotent=True).json()

    def create_project(self, name: str, description: str = "") -> str:
        body: dict[str, Any] = {"name": name}
        if description:
            body["description"] = description
        response = self.request(
            "POST", f"{API}/projects", idempotent=False, json=body, expect=(201,)
        )
        return response.json()["uuid"]

    def delete_project(self, uuid: str) -> None:
        self.request("DELETE", f"{API}/projects/{uuid}", idempotent=True)

    # --- servers ---------------------------------------------------------------------------

    def list_servers(self) -> list[dict[str, Any]]:
        return self.request("GET", f"{API}/servers", idempotent=True).json()

    def get_server(self, uuid: str) -> dict[str, Any]:
        return self.request("GET", f"{API}/servers/{uuid}", idempotent=True).json()

    def server_resources(self, uuid: str) -> list[dict[str, Any]]:
        return self.request("GET", f"{API}/servers/{uuid}/resources", idempotent=True).json()

    # --- services --------------------------------------------------------------------------

    def list_services(self) -> list[dict[str, Any]]:
        """Every service of the team, with `status`: one call serves every stack in flight."""
        return self.request("GET", f"{API}/services", idempotent=True).json()

    def get_service(self, uuid: str) -> dict[str, Any]:
        return self.request("GET", f"{API}/services/{uuid}", idempotent=True).json()

    def service_exists(self, uuid: str) -> bool:
        try:
            self.get_service(uuid)
        except NotFound:
            return False
        return True

    def create_service(
        self,
        *,
        project_uuid: str,
        server_uuid: str,
        environment_name: str,
        name: str,
        description: str,
        compose: str,
        urls: list[dict[str, str]],
    ) -> dict[str, Any]:
        """POST /services from a compose file; returns {uuid, domains}. Not started.

        Only the environment's name is sent: Coolify needs one of name or uuid (the spec marks
        both required; API-NOTES §4), and the uuid would cost a call per deploy.
        """
        body = {
            "project_uuid": project_uuid,
            "server_uuid": server_uuid,
            "environment_name": environment_name,
            "name": name,
            "description": description,
            "docker_compose_raw": encode_compose(compose),
            "urls": urls,
            "instant_deploy": False,
        }
        return self.request(
            "POST", f"{API}/services", idempotent=False, json=body, expect=(201,)
        ).json()

    def update_service(self, uuid: str, *, compose: str, urls: list[dict[str, str]]) -> dict:
        body = {"docker_compose_raw": encode_compose(compose), "urls": urls}
        return self.request("PATCH", f"{API}/services/{uuid}", idempotent=True, json=body).json()

    def set_service_urls(self, uuid: str, urls: list[dict[str, str]]) -> dict:
        """PATCH only `urls` (containment): the compose stays as it is. update_by_uuid accepts a
        body of only `urls` and applies it with applyServiceUrls, where a url of "" sets that
        application's fqdn to null (app/Http/Controllers/Api/ServicesController.php)."""
        body = {"urls": urls}
        return self.request("PATCH", f"{API}/services/{uuid}", idempotent=True, json=body).json()

    def delete_service(self, uuid: str, *, delete_volumes: bool = True) -> None:
        """Queue the deletion. All four flags are sent: Coolify's defaults destroy everything.

        Keeping the volumes also skips `docker_cleanup`: CleanupDocker (app/Actions/Server/
        CleanupDocker.php) may prune unused volumes when the server's "Delete Unused Volumes"
        setting is on, and a kept volume is unused once its containers are gone."""
        params = {
            "delete_configurations": "true",
            "delete_volumes": "true" if delete_volumes else "false",
            "docker_cleanup": "true" if delete_volumes else "false",
            "delete_connected_networks": "true",
        }
        self.request("DELETE", f"{API}/services/{uuid}", idempotent=True, params=params)

    def start_service(self, uuid: str) -> None:
        self.request("POST", f"{API}/services/{uuid}/start", idempotent=False)

    def stop_service(self, uuid: str) -> None:
        self.request(
            "POST",
            f"{API}/services/{uuid}/stop",
            idempotent=False,
            params={"docker_cleanup": "true"},
        )

    def restart_service(self, uuid: str) -> None:
        self.request(
            "POST",
            f"{API}/services/{uuid}/restart",
            idempotent=False,
            params={"latest": "false"},
        )

    def service_logs(self, uuid: str, sub_service: str, *, lines: int = 100) -> str:
        response = self.request(
            "GET",
            f"{API}/services/{uuid}/logs",
            idempotent=True,
            params={"sub_service_name": sub_service, "lines": lines},
        )
        return str(response.json().get("logs", ""))

    # --- env vars --------------------------------------------------------------------------

    def list_service_envs(self, uuid: str) -> list[dict[str, Any]]:
        return self.request("GET", f"{API}/services/{uuid}/envs", idempotent=True).json()

    def upsert_service_envs(self, uuid: str, values: dict[str, str]) -> None:
        """Bulk upsert by key. `is_literal` so Coolify never interprets `$` in a secret."""
        data = [{"key": key, "value": value, "is_literal": True} for key, value in values.items()]
        # An upsert by key: sending it again gives the same end state.
        self.request(
            "PATCH",
            f"{API}/services/{uuid}/envs/bulk",
            idempotent=True,
            json={"data": data},
            expect=(201,),
        )


RELEASE = 10**6  # sorts a release after every beta of the same version
# Features we use, by the release that brought them (API-NOTES §8).
SERVICE_URLS = (4, 0, 0, 461)  # `urls` on POST/PATCH /services


def parse_version(text: str) -> tuple[int, ...]:
    """`4.3.11` → (4, 3, 11, RELEASE); `4.0.0-beta.474` → (4, 0, 0, 474); junk → (0,)."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:-beta\.(\d+))?", text.strip())
    if not match:
        return (0,)
    major, minor, patch, beta = match.groups()
    return (int(major), int(minor), int(patch), int(beta) if beta else RELEASE)


def format_version(version: tuple[int, ...]) -> str:
    if len(version) < 4:
        return "unknown"
    base = ".".join(str(part) for part in version[:3])
    return base if version[3] == RELEASE else f"{base}-beta.{version[3]}"


def encode_compose(compose: str) -> str:
    """Strict base64 (standard alphabet, padded, one line), as Coolify requires."""
    return base64.b64encode(compose.encode("utf-8")).decode("ascii")
