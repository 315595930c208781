"""Running one shell command on every Coolify server through SERVER_COMMAND ("ssh root@{host}
{command}"; empty: on this machine), concurrently, each within the check's timeout."""

from __future__ import annotations

import re
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings

# The machine-readable forms of the runbook's `free -h`, `df -h`, `docker stats --no-stream`
# and `du -sh /var/lib/docker/volumes/cf-*` (Coolify names volumes `<service uuid>_…`, so all
# volumes are measured and mapped to stacks by name).
MEMORY_AND_DISK = "free -b && df -P -B1 && cat /proc/loadavg"
DOCKER_STATS = "docker stats --no-stream --format '{{json .}}'"
VOLUME_SIZES = "du -s -B1 /var/lib/docker/volumes/*"

_PLACEHOLDER = re.compile(r"\{(host|user|port|command)\}")
# What a server's address, login and port may be: they come from Coolify (anyone who may edit
# a server there sets them), and a value starting with "-" would be read by ssh as an option
# (e.g. -oProxyCommand=…, run on cfadmin's worker).
SAFE_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}")
SAFE_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


class UnsafeServer(ValueError):
    """Coolify's host, user or port of a server is not one cfadmin will put on a command line."""


@dataclass
class ServerRun:
    """One command's result on one server."""

    server: str  # Coolify's name for it
    host: str
    stdout: str = ""
    error: str = ""  # why it could not run or failed ("" = it ran)
    exit_code: int = 0


def server_argv(
    host: str,
    command: str,
    template: str | None = None,
    *,
    user: str = "root",
    port: str = "22",
) -> list[str]:
    """The argv that runs `command` on `host`: SERVER_COMMAND with {host}, {user}, {port} and
    {command} replaced by shell-quoted values (ssh's remote shell unquotes them once, so a glob
    in the command expands there; no other brace is a placeholder); with no template,
    `sh -c command` here."""
    template = settings.SERVER_COMMAND if template is None else template
    if not template.strip():
        return ["sh", "-c", command]
    if not (SAFE_HOST.fullmatch(host) and SAFE_USER.fullmatch(user) and port.isdigit()):
        raise UnsafeServer(f"refused: server address {host!r}, user {user!r} or port {port!r}")
    if "{command}" not in template:
        template += " {command}"
    values = {
        "host": shlex.quote(host),
        "user": shlex.quote(user),
        "port": shlex.quote(port),
        "command": shlex.quote(command),
    }
    return shlex.split(_PLACEHOLDER.sub(lambda match: values[match[1]], template))


def servers_of(coolify: Any) -> list[dict[str, str]]:
    """GET /servers: each server's name, and the ip, user and port Coolify reaches it by over
    SSH (coolify app/Http/Controllers/Api/ServersController.php `servers()` selects
    name, uuid, ip, user, port)."""
    return [
        {
            "name": str(s.get("name") or s.get("uuid") or "?"),
            "host": str(s.get("ip") or ""),
            "user": str(s.get("user") or "root"),
            "port": str(s.get("port") or "22"),
        }
        for s in coolify.list_servers()
    ]


def run_on(server: dict[str, str], command: str, timeout: float) -> ServerRun:
    run = ServerRun(server=server["name"], host=server["host"])
    try:
        argv = server_argv(
            server["host"], command, user=server.get("user", "root"), port=server.get("port", "22")
        )
    except UnsafeServer as refused:
        run.error, run.exit_code = str(refused), -1
        return run
    try:
        completed = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,  # never an interactive session on the worker
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        run.error, run.exit_code = f"no answer within {timeout:g}s", -1
        return run
    except OSError as exc:  # the command itself is missing
        run.error, run.exit_code = f"cannot run: {exc.strerror or exc}", -1
        return run
    run.stdout, run.exit_code = completed.stdout, completed.returncode
    if completed.returncode != 0:
        first = (completed.stderr.strip().splitlines() or ["no output"])[0]
        run.error = f"exit {completed.returncode}: {first[:200]}"
    return run


def run_everywhere(servers: list[dict[str, str]], command: str, timeout: float) -> list[ServerRun]:
    """The command on every server at once; results in the servers' order."""
    if not servers:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(servers))) as pool:
        return list(pool.map(lambda server: run_on(server, command, timeout), servers))
