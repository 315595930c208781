"""In-memory stand-ins for the Coolify and PocketBase clients, for unit tests of provisioning.

They keep the real clients' method names and signatures and the one behaviour the runner
depends on most: Coolify's lifecycle calls only queue a job (ServicesController.php dispatches
StartService/StopService/RestartService/DeleteResourceJob), so the status a test reads changes
only when the test lets time pass (`tick`). Integration tests use the simulator and a real
PocketBase instead; these fakes are for testing each step alone, fast and exactly.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from stacks.clients.errors import AlreadyInState, ClientError, ConnectionFailed, NotFound

# What the status reads as on each tick after a job is taken (StartService reads
# `starting:unhealthy` while its activity runs; a restart first stops: StopService → `exited`).
JOB_STATUSES = {
    "start": ["starting:unhealthy", "running:healthy"],
    "restart": ["exited", "starting:unhealthy", "running:healthy"],
    "stop": ["exited"],
}


class FakeClientBase:
    """Call log and fault injection shared by both fakes."""

    service = "Fake"

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._faults: dict[str, list[Exception]] = defaultdict(list)

    def fail(self, method: str, *errors: Exception) -> None:
        """The next calls of `method` raise these errors, one per call, in order."""
        self._faults[method].extend(errors)

    def _call(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        if self._faults[method]:
            raise self._faults[method].pop(0)

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    def close(self) -> None:
        pass


class FakeCoolify(FakeClientBase):
    service = "Coolify"
    base_url = "http://coolify.fake"

    def __init__(self, *, version: tuple[int, ...] = (4, 3, 11, 10**6)) -> None:
        super().__init__()
        self.version = version
        self.projects: dict[str, dict[str, Any]] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.servers = [{"uuid": "server-1", "settings": {"is_usable": True}}]
        self._ids = itertools.count(1)
        self._jobs: list[tuple[str, str, list[str]]] = []  # (kind, uuid, statuses still to come)

    # --- time --------------------------------------------------------------------------------

    def tick(self) -> None:
        """Let Coolify's queue and container checks move one step."""
        still: list[tuple[str, str, list[str]]] = []
        for kind, uuid, statuses in self._jobs:
            if kind == "delete":
                self.services.pop(uuid, None)
                continue
            if uuid in self.services:
                self.services[uuid]["status"] = statuses[0]
            if len(statuses) > 1:
                still.append((kind, uuid, statuses[1:]))
        self._jobs = still

    def settle(self) -> None:
        while self._jobs:
            self.tick()

    # --- the client's methods ----------------------------------------------------------------

    def require_version(self, minimum: tuple[int, ...], feature: str) -> None:
        self._call("require_version", minimum)
        if self.version < minimum:
            raise ClientError(f"Coolify is too old for {feature}", service=self.service)

    def list_projects(self) -> list[dict[str, Any]]:
        self._call("list_projects")
        return [dict(project) for project in self.projects.values()]

    def find_project(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.list_projects() if p["name"] == name), None)

    def get_project(self, uuid: str) -> dict[str, Any]:
        self._call("get_project", uuid)
        if uuid not in self.projects:
            raise NotFound("Project not found.", service=self.service, status=404)
        return dict(self.projects[uuid])

    def create_project(self, name: str, description: str = "") -> str:
        self._call("create_project", name, description)
        number = next(self._ids)
        uuid = f"project-{number}"
        self.projects[uuid] = {
            "id": number,
            "uuid": uuid,
            "name": name,
            "description": description,
            "environments": [{"id": number, "name": "production"}],
        }
        return uuid

    def delete_project(self, uuid: str) -> None:
        self._call("delete_project", uuid)
        self.projects.pop(uuid, None)

    def list_servers(self) -> list[dict[str, Any]]:
        self._call("list_servers")
        return list(self.servers)

    def list_services(self) -> list[dict[str, Any]]:
        self._call("list_services")
        return [dict(service) for service in self.services.values()]

    def service_exists(self, uuid: str) -> bool:
        self._call("service_exists", uuid)
        return uuid in self.services

    def create_service(self, *, project_uuid: str, name: str, **fields: Any) -> dict[str, Any]:
        self._call("create_service", project_uuid, name)
        project = self.projects.get(project_uuid)
        if project is None:
            raise NotFound("Project not found.", service=self.service, status=404)
        uuid = f"service-{next(self._ids)}"
        self.services[uuid] = {
            "uuid": uuid,
            "name": name,
            "status": "exited",
            "environment_id": project["environments"][0]["id"],
            "envs": {},
            **fields,
        }
        return {"uuid": uuid, "domains": []}

    def update_service(self, uuid: str, *, compose: str, urls: list[dict[str, str]]) -> dict:
        self._call("update_service", uuid)
        self._service(uuid).update(compose=compose, urls=urls)
        return {"uuid": uuid}

    def upsert_service_envs(self, uuid: str, values: dict[str, str]) -> None:
        self._call("upsert_service_envs", uuid, tuple(sorted(values)))
        self._service(uuid)["envs"].update(values)

    def start_service(self, uuid: str) -> None:
        self._call("start_service", uuid)
        if "running" in self._service(uuid)["status"]:
            raise AlreadyInState("Service is already running.", service=self.service, status=400)
        self._jobs.append(("start", uuid, list(JOB_STATUSES["start"])))

    def restart_service(self, uuid: str) -> None:
        self._call("restart_service", uuid)
        self._service(uuid)
        self._jobs.append(("restart", uuid, list(JOB_STATUSES["restart"])))

    def stop_service(self, uuid: str) -> None:
        self._call("stop_service", uuid)
        if "running" not in self._service(uuid)["status"]:
            raise AlreadyInState("Service is already stopped.", service=self.service, status=400)
        self._jobs.append(("stop", uuid, list(JOB_STATUSES["stop"])))

    def delete_service(self, uuid: str, *, delete_volumes: bool = True) -> None:
        self._call("delete_service", uuid)
        self._service(uuid)
        self._jobs.append(("delete", uuid, []))

    def _service(self, uuid: str) -> dict[str, Any]:
        if uuid not in self.services:
            raise NotFound("Service not found.", service=self.service, status=404)
        return self.services[uuid]


class FakePocketBase(FakeClientBase):
    """The agent_stacks collection: one record per (tenant, stack_name). `down` refuses calls."""

    service = "PocketBase"

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, dict[str, Any]] = {}
        self.down = False
        self._ids = itertools.count(1)

    def _call(self, method: str, *args: Any) -> None:
        super()._call(method, *args)
        if self.down:
            raise ConnectionFailed("connection refused", service=self.service)

    def find_record(self, tenant: str, stack_name: str) -> dict[str, Any] | None:
        self._call("find_record", tenant, stack_name)
        return next(
            (
                dict(r)
                for r in self.records.values()
                if r["tenant"] == tenant and r["stack_name"] == stack_name
            ),
            None,
        )

    def list_records(self, *, tenant: str | None = None) -> list[dict[str, Any]]:
        self._call("list_records", tenant)
        return [dict(r) for r in self.records.values() if tenant in (None, r["tenant"])]

    def upsert_record(self, data: dict[str, Any]) -> dict[str, Any]:
        self._call("upsert_record", data.get("tenant"), data.get("stack_name"))
        existing = next(
            (
                r
                for r in self.records.values()
                if r["tenant"] == data["tenant"] and r["stack_name"] == data["stack_name"]
            ),
            None,
        )
        if existing is None:
            existing = {"id": f"record{next(self._ids):011d}"}
            self.records[existing["id"]] = existing
        existing.update(data)
        return dict(existing)

    def delete_record(self, record_id: str) -> bool:
        self._call("delete_record", record_id)
        return self.records.pop(record_id, None) is not None
