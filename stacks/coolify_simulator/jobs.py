"""Queued lifecycle jobs, the simulated Docker host, and the periodic container-status check.

Nothing runs in the background: `Lifecycle.advance(now)` replays every event due by `now` in
time order (called on every request and by snapshot()), with the container-status checks
(refreshes) interleaved at their own period. Times are the simulator clock's seconds.

Sources (paths under Coolify 4.3.11):
- app/Actions/Service/StartService.php — parse, optional StopService, save configs, then one
  Activity for `docker compose up -d --remove-orphans --force-recreate --build`.
- app/Actions/Service/RestartService.php — StartService::run(stopBeforeStart: true).
- app/Actions/Service/StopService.php — cancel queued Activities, `docker stop` + `docker rm -f`,
  then rows set to `exited`.
- app/Jobs/DeleteResourceJob.php + app/Actions/Service/DeleteService.php — stop, volumes,
  rows force-deleted.
- bootstrap/helpers/remoteProcess.php, app/Jobs/CoolifyTask.php — the Activity stays `queued`
  until `finished` (in_progress is never written).
- app/Actions/Docker/GetContainersStatus.php — the check that stores statuses.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stacks.coolify_simulator import naming, statuses

if TYPE_CHECKING:
    from stacks.coolify_simulator.api import SimulatedCoolify


def rfc3339_nano(wall: float) -> str:
    # docker logs --timestamps: RFC3339NanoFixed, nine fractional digits.
    moment = datetime.fromtimestamp(wall, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Lifecycle:
    """The jobs queue, the containers of the one simulated server, and its status checks."""

    def __init__(self, sim: SimulatedCoolify, noise_seed: int | None) -> None:
        self.sim = sim
        self.reseed(noise_seed)
        self.events: list[tuple[float, int, str, dict[str, Any]]] = []
        self.seq = itertools.count()
        self.containers: dict[str, dict[str, Any]] = {}  # container name → container
        self.activities: dict[str, list[dict[str, Any]]] = {}  # service uuid → Activities
        self.last = sim.clock.now()

    def reseed(self, noise_seed: int | None) -> None:
        """No noise (None), or a reproducible random sequence from this seed."""
        self.noise_seed = noise_seed
        self.rng = random.Random(noise_seed) if noise_seed is not None else None
        # The refresh grid: checks at phase + k·period. Noise picks a random phase.
        period = self.sim.timings.refresh_seconds
        self.phase = self.rng.uniform(0, period) if self.rng and period > 0 else 0.0

    # --- time ------------------------------------------------------------------------------

    def shift(self, delta: float) -> None:
        """The clock was replaced: move every stored time by the difference."""
        self.events = [(t + delta, s, n, p) for t, s, n, p in self.events]
        heapq.heapify(self.events)
        self.last += delta
        for container in self.containers.values():
            for name in ("created_clock", "started_clock"):
                if container.get(name) is not None:
                    container[name] += delta

    def wall(self, t: float) -> float:
        """Wall-clock seconds of simulator time `t` (for timestamps the API shows)."""
        return self.sim.wall_now() - (self.sim.clock.now() - t)

    def jitter(self, seconds: float, low: float = 0.5, high: float = 1.5) -> float:
        return seconds * self.rng.uniform(low, high) if self.rng and seconds > 0 else seconds

    def schedule(self, at: float, event: str, **payload: Any) -> None:
        heapq.heappush(self.events, (at, next(self.seq), event, payload))

    def advance(self, now: float) -> None:
        """Replay everything due by `now`: events in order, checks in between."""
        if now < self.last:  # a clock that went back (tests): restart the grid from here
            self.last = now
        while True:
            due = self.events[0][0] if self.events and self.events[0][0] <= now else None
            self._checks_until(now if due is None else due)
            if due is None:
                return
            at, _, name, payload = heapq.heappop(self.events)
            getattr(self, f"_on_{name}")(at, **payload)

    def settle(self) -> None:
        """Run every pending event to its end, then check (export_state: nothing is lost)."""
        while self.events:
            at, _, name, payload = heapq.heappop(self.events)
            getattr(self, f"_on_{name}")(at, **payload)
        for container in self.containers.values():
            if container["state"] == "running" and container["healthcheck"]:
                container["health"] = "healthy"
        self.refresh(self.sim.clock.now())

    def _checks_until(self, limit: float) -> None:
        period = self.sim.timings.refresh_seconds
        if period <= 0:  # checks are continuous: stored statuses follow the containers
            self.refresh(limit)
            self.last = limit
            return
        first = math.floor((self.last - self.phase) / period) + 1
        last = math.floor((limit - self.phase) / period)
        if first <= last:
            # Nothing changes between two events, so the first check in the interval stores
            # what every later one would; the last one only moves last_online_at.
            self.refresh(self.phase + first * period)
            if last > first:
                self.refresh(self.phase + last * period)
        self.last = limit

    # --- enqueueing (what the controllers dispatch) ----------------------------------------

    def queue_lag(self) -> float:
        return self.jitter(self.sim.timings.queue_seconds)

    def start(self, uuid: str, *, stop_before_start: bool = False, pull: bool = False) -> None:
        # StartService::dispatch / RestartService::dispatch: a queued job on `high`.
        now = self.sim.clock.now()
        self.schedule(
            now + self.queue_lag(), "start_job", uuid=uuid, stop=stop_before_start, pull=pull
        )

    def stop(self, uuid: str) -> None:
        # StopService::dispatch($service, false, $dockerCleanup)
        now = self.sim.clock.now()
        self.schedule(now + self.queue_lag(), "stop_job", uuid=uuid)

    def delete(self, uuid: str, flags: dict[str, bool]) -> None:
        # DeleteResourceJob::dispatch(...) on `high`.
        now = self.sim.clock.now()
        self.schedule(now + self.queue_lag(), "delete_job", uuid=uuid, flags=flags)

    # --- reading ---------------------------------------------------------------------------

    def is_starting(self, uuid: str) -> bool:
        # Service::isStarting(): the newest Activity for this uuid is queued or in_progress.
        activities = self.activities.get(uuid)
        return bool(activities) and activities[-1]["status"] in ("queued", "in_progress")

    def container(self, name: str) -> dict[str, Any] | None:
        return self.containers.get(name)

    def by_label(self, service_uuid: str, label: str) -> dict[str, Any] | None:
        # getCurrentServiceSubContainerStatus: `docker ps -a` by coolify.serviceId, then the
        # container whose coolify.name label (a slug) equals the name asked for.
        for container in self.containers.values():
            if container["service_uuid"] == service_uuid and container["label"] == label:
                return container
        return None

    # --- the jobs --------------------------------------------------------------------------

    def _on_start_job(self, at: float, uuid: str, stop: bool, pull: bool) -> None:
        service = self.sim.services.get(uuid)
        if service is None:
            return
        self.sim.parse_service(service)  # StartService.php:21 `$service->parse()`
        if stop and not pull:  # shouldStopBeforeStarting (:79-82)
            at = self._stop_service(service, at)
        # saveComposeConfigs + isConfigurationChanged, then remote_process creates the Activity.
        self.schedule(at + self.jitter(self.sim.timings.save_seconds), "compose_up", uuid=uuid)

    def _on_stop_job(self, at: float, uuid: str) -> None:
        service = self.sim.services.get(uuid)
        if service is not None:
            self._stop_service(service, at)

    def _on_delete_job(self, at: float, uuid: str, flags: dict[str, bool]) -> None:
        service = self.sim.services.get(uuid)
        if service is None:
            return
        # DeleteResourceJob: StopService first, then cleanupRemote, then deleteLocal.
        done = self._stop_service(service, at)
        self.schedule(done, "cleanup_remote", uuid=uuid, flags=flags)
        self.schedule(
            done + self.jitter(self.sim.timings.delete_seconds),
            "delete_local",
            uuid=uuid,
            flags=flags,
        )

    def _stop_service(self, service: dict[str, Any], at: float) -> float:
        """StopService::handle — synchronous inside whichever job calls it. Returns when done."""
        # StopService.php:23-31: queued/in_progress Activities become `cancelled` at once.
        for activity in self.activities.get(service["uuid"], []):
            if activity["status"] in ("queued", "in_progress"):
                activity["status"] = "cancelled"
        names = [
            naming.container_name(s["name"], service["uuid"])
            for s in self.sim.sub_resources(service)
        ]
        # `docker stop` takes its time only for containers that exist (and `rm -f` of missing
        # ones returns at once).
        present = [name for name in names if name in self.containers]
        duration = self.sim.timings.stop_seconds if present else 0.0
        for name in present:
            # `docker stop --time=30 …` — each container exits at its own moment.
            self.schedule(at + self.jitter(duration, 0.2, 1.0), "container_exit", name=name)
        # then `docker rm -f …`, then `$applications->each->update(['status' => 'exited'])`.
        done = at + duration
        self.schedule(done, "containers_removed", uuid=service["uuid"])
        self.schedule(done, "rows_exited", uuid=service["uuid"])
        return done

    def _on_compose_up(self, at: float, uuid: str) -> None:
        service = self.sim.services.get(uuid)
        if service is None:
            return
        # remote_process(): an Activity row created `queued`; it reads starting:unhealthy.
        activity = {"id": next(self.seq), "status": "queued", "created_clock": at}
        self.activities.setdefault(uuid, []).append(activity)
        end = at + self.sim.timings.start_seconds
        for sub in self.sim.sub_resources(service):
            # --force-recreate: every container is created anew, then started. Without noise
            # the whole stack comes up at the end of the run (after the image pulls).
            created = start = end
            if self.rng:
                created = at + (end - at) * self.rng.uniform(0.4, 0.95)
                start = created + (end - created) * self.rng.uniform(0.0, 1.0)
            self.schedule(created, "container_create", uuid=uuid, sub=sub["name"])
            self.schedule(start, "container_start", uuid=uuid, sub=sub["name"])
        self.schedule(end, "compose_done", uuid=uuid, activity=activity["id"])

    def _on_compose_done(self, at: float, uuid: str, activity: int) -> None:
        # CoolifyTask: the row becomes `finished` — even one StopService cancelled meanwhile
        # (the compose run is not killed and overwrites the status).
        for row in self.activities.get(uuid, []):
            if row["id"] == activity:
                row["status"] = "finished"

    # --- containers ------------------------------------------------------------------------

    def _on_container_create(self, at: float, uuid: str, sub: str) -> None:
        service = self.sim.services.get(uuid)
        spec = self.sim.sub_spec(service, sub) if service else None
        if spec is None:
            return
        name = naming.container_name(sub, uuid)
        # `compose up` creates the named volumes it mounts (`docker volume create`).
        self.sim.volumes.update(spec.volumes)
        # A recreated container is a new container: its logs start empty.
        self.containers[name] = {
            "name": name,
            "label": naming.container_label(sub, uuid),
            "service_uuid": uuid,
            "sub": sub,
            "image": spec.image,
            "state": "created",
            "health": None,
            "healthcheck": spec.healthcheck,
            "excluded": spec.excluded,
            "created_clock": at,
            "started_clock": None,
            "generation": next(self.seq),
            "logs": [],
            # What `docker inspect` lists under Mounts: its named volumes, and the existing
            # volumes it binds by data directory (a bind of a missing one gets an empty
            # directory from Docker, not the volume: it is not listed).
            "mounts": [
                *spec.volumes,
                *(v for v in spec.bound_volumes if v in self.sim.volumes),
            ],
        }

    def _on_container_start(self, at: float, uuid: str, sub: str) -> None:
        container = self.containers.get(naming.container_name(sub, uuid))
        if container is None or container["state"] != "created":
            return
        container["state"] = "running"
        container["started_clock"] = at
        self._log(container, at, f"Starting {container['image'] or sub} ({sub})")
        # Worded as the platform's images say it (ollama: "Listening on …"; uvicorn: "… running
        # on …"): the post-deploy checklist reads start-up from these words (ops/probes.py).
        self._log(container, at, f"{sub}: Listening on 0.0.0.0")
        if container["healthcheck"]:
            health = self.sim.timings.health_seconds
            container["health"] = "starting" if health > 0 else "healthy"
            if health > 0:
                self.schedule(
                    at + health,
                    "container_healthy",
                    name=container["name"],
                    generation=container["generation"],
                )

    def _on_container_healthy(self, at: float, name: str, generation: int) -> None:
        container = self.containers.get(name)
        if container and container["generation"] == generation and container["state"] == "running":
            container["health"] = "healthy"
            self._log(container, at, "healthcheck passed")

    def _on_container_exit(self, at: float, name: str) -> None:
        container = self.containers.get(name)
        if container is not None and container["state"] in ("running", "created"):
            if container["state"] == "running":
                self._log(container, at, "Received SIGTERM, shutting down")
            container["state"] = "exited"
            container["health"] = None

    def _on_containers_removed(self, at: float, uuid: str) -> None:
        # `docker rm -f <every sub-resource container>`: whatever exists now goes, running or
        # not. A compose run still going creates its containers later, and they stay.
        for name, container in list(self.containers.items()):
            if container["service_uuid"] == uuid:
                del self.containers[name]

    def _on_rows_exited(self, at: float, uuid: str) -> None:
        # StopService.php:52-53: `$applications->each->update(['status' => 'exited'])`.
        service = self.sim.services.get(uuid)
        if service is None:
            return
        for sub in self.sim.sub_resources(service):
            self._store(sub, "exited", at)

    def _on_cleanup_remote(self, at: float, uuid: str, flags: dict[str, bool]) -> None:
        # DeleteResourceJob::cleanupRemote: `docker volume rm -f` for each persistent storage
        # when delete_volumes; `rm -rf` the workdir; `docker rm -f {uuid}`.
        service = self.sim.services.get(uuid)
        if service is not None and flags.get("delete_volumes", True):
            for volume in service["_volumes"]:
                self.sim.volumes.discard(volume)

    def _on_delete_local(self, at: float, uuid: str, flags: dict[str, bool]) -> None:
        # DeleteService::deleteLocal in a transaction: apps, dbs, envs, then the service.
        self.sim.forget_service(uuid, flags)
        self.activities.pop(uuid, None)

    def _log(self, container: dict[str, Any], at: float, line: str) -> None:
        container["logs"].append((self.wall(at), line))

    # --- the status check ------------------------------------------------------------------

    def refresh(self, at: float) -> None:
        """GetContainersStatus (SSH path): each sub-resource's container → its stored status.
        A missing container sets `exited` unless already exited — and nothing when the server
        has no containers at all (GetContainersStatus.php:308-364)."""
        any_container = bool(self.containers)
        for service in list(self.sim.services.values()):
            for sub in self.sim.sub_resources(service):
                container = self.containers.get(naming.container_name(sub["name"], service["uuid"]))
                if container is None:
                    if any_container and not (sub.get("status") or "").startswith("exited"):
                        self._store(sub, "exited", at)
                    continue
                status = statuses.sub_resource_status(
                    [statuses.container_string(container["state"], container["health"])],
                    container["excluded"],
                )
                if not self._store(sub, status, at):
                    # Unchanged: `update(['last_online_at' => now()])` still saves (uncast
                    # column, always dirty), so updated_at moves on every check.
                    sub["last_online_at"] = self._db_time(at)
                    sub["updated_at"] = iso(self.wall(at))

    def _store(self, sub: dict[str, Any], status: str, at: float) -> bool:
        if sub.get("status") == status:
            return False
        sub["status"] = status
        # ServiceApplication::saving: last_online_at = now() whenever status is dirty.
        sub["last_online_at"] = self._db_time(at)
        sub["updated_at"] = iso(self.wall(at))
        return True

    def _db_time(self, at: float) -> str:
        # last_online_at has no cast: the raw database string "YYYY-MM-DD HH:MM:SS".
        return datetime.fromtimestamp(self.wall(at), UTC).strftime("%Y-%m-%d %H:%M:%S")

    # --- logs ------------------------------------------------------------------------------

    def logs(self, container: dict[str, Any], lines: int, timestamps: bool) -> str:
        # `docker logs -n N [--timestamps] <id> 2>&1`, ANSI stripped, trimmed.
        tail = container["logs"][-lines:]
        text = "\n".join(f"{rfc3339_nano(w)} {line}" if timestamps else line for w, line in tail)
        return text.strip()

    # --- persistence -----------------------------------------------------------------------

    def adopt_running(self, service: dict[str, Any]) -> None:
        """Running containers for a service imported without a container model."""
        now = self.sim.clock.now()
        for sub in self.sim.sub_resources(service):
            self._on_container_create(now, service["uuid"], sub["name"])
            self._on_container_start(now, service["uuid"], sub["name"])
            container = self.containers.get(naming.container_name(sub["name"], service["uuid"]))
            if container and container["healthcheck"]:
                container["health"] = "healthy"
        self.refresh(now)

    def export(self) -> dict[str, Any]:
        now = self.sim.clock.now()
        return {
            "containers": {
                name: {
                    **c,
                    "created_clock": None,
                    "started_clock": None
                    if c["started_clock"] is None
                    else c["started_clock"] - now,
                    "logs": [list(entry) for entry in c["logs"]],
                }
                for name, c in self.containers.items()
            }
        }

    def load(self, data: dict[str, Any]) -> None:
        now = self.sim.clock.now()
        self.containers = {}
        for name, c in (data.get("containers") or {}).items():
            if c.get("service_uuid") not in self.sim.services:
                continue
            started = c.get("started_clock")
            self.containers[name] = {
                **c,
                "started_clock": None if started is None else now + started,
                "logs": [tuple(entry) for entry in c.get("logs", [])],
            }
