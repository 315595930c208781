"""A stand-in for the simulated server's shell (`make run`, tests: no Docker): answers `free -b`,
`df -P -B1`, `cat /proc/loadavg`, `docker stats --no-stream --format '{{json .}}'` and
`du -s -B1 /var/lib/docker/volumes/*` from the simulator's containers and volumes, with
plausible figures that depend only on each container's or volume's name. NOT a real server.

Run as `manage.py coolify_server_shell …` or, starting faster (no Django), as
`python -m stacks.coolify_simulator.server_shell [--url U] [--state FILE] <command>`."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.coolify_simulator import naming

GIB = 1024**3
MIB = 1024**2
HOST_MEMORY = 16 * GIB
HOST_DISK = 160 * 1000**3
BASE_MEMORY = 2 * GIB  # the OS, Docker and Coolify's own containers
BASE_DISK = 24 * 1000**3  # the OS, images and build caches
# Coolify's own containers on every server it manages (besides the stacks').
COOLIFY_CONTAINERS = ("coolify", "coolify-db", "coolify-redis", "coolify-realtime", "coolify-proxy")
VOLUMES_DIR = "/var/lib/docker/volumes"


@dataclass
class ServerView:
    """What the simulated server has: container name → running, and volume names."""

    containers: dict[str, bool] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)

    @property
    def running(self) -> list[str]:
        return sorted(name for name, up in self.containers.items() if up)


def from_state(data: dict[str, Any]) -> ServerView:
    """Either the simulator's `/_sim/state` (a snapshot: container names, services with their
    sub-resources' statuses) or its saved state file (containers with their state)."""
    view = ServerView(volumes=sorted(data.get("volumes") or []))
    docker = (data.get("docker") or {}).get("containers")
    if isinstance(docker, dict):  # the state file
        view.containers = {name: c.get("state") == "running" for name, c in docker.items()}
        return view
    running = set()
    for service in data.get("services") or []:
        for sub in [*(service.get("applications") or []), *(service.get("databases") or [])]:
            if str(sub.get("status", "")).startswith("running"):
                running.add(naming.container_name(sub["name"], service["uuid"]))
    view.containers = {name: name in running for name in data.get("containers") or []}
    return view


def fraction(name: str, salt: str = "") -> float:
    """A number in [0, 1) that depends only on the name (and what it is for)."""
    digest = hashlib.sha256(f"{salt}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def container_memory(name: str) -> int:
    return int((40 + fraction(name, "memory") * 600) * MIB)


def container_cpu(name: str) -> float:
    return round(fraction(name, "cpu") * 40, 2)


def volume_bytes(name: str) -> int:
    if name.endswith("-models"):  # base-llm's Ollama models: gigabytes
        return int((2 + fraction(name, "size") * 6) * GIB)
    return int((1 + fraction(name, "size") * 300) * MIB)


def _containers(view: ServerView) -> list[str]:
    return [*COOLIFY_CONTAINERS, *view.running]


def free(view: ServerView) -> str:
    used = BASE_MEMORY + sum(container_memory(name) for name in view.running)
    cache = min(3 * GIB, HOST_MEMORY - used)
    available = HOST_MEMORY - used
    rows = [
        f"{'':8}{'total':>15}{'used':>12}{'free':>12}{'shared':>12}{'buff/cache':>12}"
        f"{'available':>12}",
        f"{'Mem:':8}{HOST_MEMORY:>15}{used:>12}{HOST_MEMORY - used - cache:>12}"
        f"{64 * MIB:>12}{cache:>12}{available:>12}",
        f"{'Swap:':8}{2 * GIB:>15}{0:>12}{2 * GIB:>12}",
    ]
    return "\n".join(rows) + "\n"


def df(view: ServerView) -> str:
    used = BASE_DISK + sum(volume_bytes(name) for name in view.volumes)
    available = HOST_DISK - used
    rows = [
        "Filesystem            1-blocks         Used    Available Capacity Mounted on",
        f"/dev/sda1 {HOST_DISK} {used} {available} {-(-100 * used // HOST_DISK)}% /",
        f"tmpfs {HOST_MEMORY // 2} 0 {HOST_MEMORY // 2} 0% /dev/shm",
        "/dev/sda15 109422592 6238208 103184384 6% /boot/efi",
    ]
    # Every running container's overlay mount, as `df` on a Docker host lists them.
    for name in view.running:
        layer = hashlib.sha256(name.encode()).hexdigest()
        rows.append(
            f"overlay {HOST_DISK} {used} {available} 20% /var/lib/docker/overlay2/{layer}/merged"
        )
    return "\n".join(rows) + "\n"


def loadavg(view: ServerView) -> str:
    load = 0.2 + sum(container_cpu(name) for name in view.running) / 100
    return f"{load:.2f} {load * 0.9:.2f} {load * 0.8:.2f} 2/{300 + len(view.running) * 20} 4242\n"


def docker_stats(view: ServerView) -> str:
    lines = []
    for name in _containers(view):
        memory = container_memory(name)
        lines.append(
            json.dumps(
                {
                    "BlockIO": "12.3MB / 4.1MB",
                    "CPUPerc": f"{container_cpu(name):.2f}%",
                    "Container": hashlib.sha256(name.encode()).hexdigest()[:12],
                    "ID": hashlib.sha256(name.encode()).hexdigest()[:12],
                    "MemPerc": f"{100 * memory / HOST_MEMORY:.2f}%",
                    "MemUsage": f"{memory / MIB:.1f}MiB / {HOST_MEMORY / GIB:.2f}GiB",
                    "Name": name,
                    "NetIO": "1.2MB / 850kB",
                    "PIDs": str(5 + int(fraction(name, "pids") * 40)),
                },
                separators=(",", ":"),  # as Go's encoding/json writes it
            )
        )
    return "\n".join(lines) + ("\n" if lines else "")


def du(view: ServerView) -> str:
    rows = [f"{volume_bytes(name)}\t{VOLUMES_DIR}/{name}" for name in view.volumes]
    rows += [f"4096\t{VOLUMES_DIR}/backingFsBlockDev", f"32768\t{VOLUMES_DIR}/metadata.db"]
    return "\n".join(sorted(rows, key=lambda row: row.split("\t")[1])) + "\n"


def answer(command: str, view: ServerView) -> tuple[str, str, int]:
    """(stdout, stderr, exit code) of a command line: one of the commands above, or several
    joined by `&&` (stops at the first that fails) or `;`."""
    out: list[str] = []
    for part in _split(command):
        words = [w for w in shlex.split(part) if w]
        text = _one(words, view)
        if text is None:
            return "".join(out), f"sh: 1: {words[0] if words else ''}: not found\n", 127
        out.append(text)
    return "".join(out), "", 0


def _split(command: str) -> list[str]:
    return [piece.strip() for chunk in command.split("&&") for piece in chunk.split(";")]


def _one(words: list[str], view: ServerView) -> str | None:
    if words[:1] == ["free"]:
        return free(view)
    if words[:1] == ["df"]:
        return df(view)
    if words == ["cat", "/proc/loadavg"]:
        return loadavg(view)
    if words[:2] == ["docker", "stats"]:
        return docker_stats(view)
    if words[:1] == ["du"] and any(w.startswith(VOLUMES_DIR) for w in words):
        return du(view)
    return None


class ShellError(Exception):
    """The simulator's state could not be read (the message names where, never the token)."""


def load_view(state: str = "", url: str = "", token: str = "") -> ServerView:
    """The server as the simulator's saved state file (`state`; missing: an empty server) or
    its live `/_sim/state` (at `url`, with its token) has it."""
    if state:
        path = Path(state)
        return from_state(json.loads(path.read_text())) if path.is_file() else ServerView()
    if not url:
        raise ShellError("no simulator: give --url or --state (COOLIFY_URL is empty)")
    url = url.rstrip("/")
    request = urllib.request.Request(
        f"{url}/_sim/state", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return from_state(json.loads(response.read()))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ShellError(f"cannot read the simulator's state at {url}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """`python -m stacks.coolify_simulator.server_shell`: the URL and token default to the
    COOLIFY_URL / COOLIFY_TOKEN environment variables (as `make run` passes them on)."""
    parser = argparse.ArgumentParser(description="The SIMULATED Coolify server's shell.")
    parser.add_argument("--state", default="")
    parser.add_argument("--url", default=os.environ.get("COOLIFY_URL", ""))
    parser.add_argument("--token", default=os.environ.get("COOLIFY_TOKEN", ""))
    parser.add_argument("--host", default="")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    command = " ".join(options.command).strip()
    if not command:
        parser.error("no command given (e.g. 'free -b && df -P -B1')")
    try:
        view = load_view(options.state, options.url, options.token)
    except ShellError as error:
        print(error, file=sys.stderr)
        return 255  # as ssh does when it cannot reach the server
    stdout, stderr, code = answer(command, view)
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
