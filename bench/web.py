"""Web benchmark (`make bench-web`; issue 13): cfadmin under concurrent load, served as the
container serves it.

gunicorn runs with the Dockerfile's CMD — read from the Dockerfile, so the two cannot
disagree; only the bind address becomes a free loopback port — with DEBUG off, static files
collected and served by whitenoise as in the image, against PostgreSQL with the LARGE dataset
of bench/dataset.py (database `cfadmin_bench`, built when missing). locust (headless) then
loads one endpoint at a time — the stack list, a stack page, the operations dashboard, the
login (form and password) — with 10 and then 50 clients for 30 s each, and the report gives
requests/s, p50/p95/p99 and errors for each.

What differs from production, and why: plain HTTP on loopback (TLS ends at the proxy, so the
Secure cookie flags and the HTTPS redirect are off) and no second factor for the bench
superuser (a TOTP code per client would measure nothing the login POST does not). The load
generator shares the machine's cores with the server: figures are indicative.

    python bench/web.py [--clients 10 50] [--seconds 30] [--workers N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[1]
if sys.path[0] == str(Path(__file__).resolve().parent):
    sys.path[0] = str(BASE_DIR)  # run as a script: import `bench.*`, not bench/'s modules
BIN = Path(sys.executable).parent
ENDPOINTS = ("stack list", "stack page", "dashboard", "login")


def dockerfile_command(dockerfile: Path = BASE_DIR / "Dockerfile") -> list[str]:
    """The image's CMD (exec form), continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    commands = [line[4:].strip() for line in text.splitlines() if line.startswith("CMD ")]
    if not commands:
        raise SystemExit("Dockerfile has no CMD")
    command = json.loads(commands[-1])
    if command[0] != "gunicorn":
        raise SystemExit(f"Dockerfile's CMD is not gunicorn: {command}")
    return command


def option(command: list[str], name: str) -> str | None:
    for i, arg in enumerate(command):
        if arg == name and i + 1 < len(command):
            return command[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def with_option(command: list[str], name: str, value: str) -> list[str]:
    out, skip = [], False
    for i, arg in enumerate(command):
        if skip:
            skip = False
            continue
        if arg == name and i + 1 < len(command):
            skip = True
            continue
        if arg.startswith(f"{name}="):
            continue
        out.append(arg)
    return [*out, name, value]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(database_url: str, static_root: Path) -> dict[str, str]:
    from bench import settings_admin  # noqa: F401  (its environment defaults: the bench keys)

    # Not the admin benchmark's DASHBOARD_CACHE_SECONDS=0 (it times the dashboard's work):
    # the server runs as deployed, with the dashboard's 3-second reuse.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "DEBUG", "DASHBOARD_CACHE_SECONDS")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="cfadmin.settings",
        DEBUG="false",
        DATABASE_URL=database_url,
        SECRET_KEY=os.environ["SECRET_KEY"],
        SECRETS_ENCRYPTION_KEYS=os.environ["SECRETS_ENCRYPTION_KEYS"],
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        MFA_ENFORCED="false",
        STATIC_ROOT=str(static_root),
        STATIC_MANIFEST="true",
        CFADMIN_ENV_FILE="/nonexistent/.env",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def wait_until_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"gunicorn did not answer at {url}/healthz within {timeout:g} s")
        time.sleep(0.3)


def log_in_sessions(
    url: str, login_path: str, count: int, username: str, password: str
) -> list[str]:
    """`count` sessions of the bench user, each through the login form (CSRF and all)."""
    import requests

    sessions = []
    for _ in range(count):
        with requests.Session() as client:
            client.get(url + login_path, timeout=30)
            response = client.post(
                url + login_path,
                data={
                    "username": username,
                    "password": password,
                    "csrfmiddlewaretoken": client.cookies.get("csrftoken", ""),
                    "next": "/admin/",
                },
                allow_redirects=False,
                timeout=30,
            )
            if response.status_code != 302 or "sessionid" not in client.cookies:
                raise SystemExit(f"bench login failed: HTTP {response.status_code}")
            sessions.append(client.cookies["sessionid"])
    return sessions


def run_locust(
    url: str,
    endpoint: str,
    clients: int,
    seconds: int,
    env: dict[str, str],
    workdir: Path,
) -> list[dict[str, Any]]:
    prefix = workdir / f"{endpoint.replace(' ', '-')}-{clients}"
    command = [
        str(BIN / "locust"),
        "-f",
        str(BASE_DIR / "bench" / "locustfile.py"),
        "--headless",
        "--users",
        str(clients),
        "--spawn-rate",
        str(clients),
        "--run-time",
        f"{seconds}s",
        "--host",
        url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "10",
    ]
    subprocess.run(
        command,
        env={**env, "BENCH_ENDPOINT": endpoint},
        cwd=BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "locust.log", "a"),  # noqa: SIM115  (closed with the process)
        check=False,  # locust exits 1 when a request failed: the report says so
    )
    with open(f"{prefix}_stats.csv", newline="") as stats:
        return [row for row in csv.DictReader(stats) if row["Name"] != "Aggregated"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--endpoints", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS))
    parser.add_argument(
        "--workers", type=int, help="try another worker count than the Dockerfile's"
    )
    args = parser.parse_args()
    if not (BIN / "locust").exists():
        raise SystemExit("locust is not installed: pip install -e '.[bench]' (make bench-web does)")

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_admin"
    from bench import dataset

    marker = dataset.open_dataset("pg", "large", log=lambda line: print(line, flush=True))
    from axes.models import AccessAttempt
    from django.contrib.auth.models import User
    from django.urls import reverse

    # Failed logins an interrupted earlier run may have left (bench database only).
    AccessAttempt.objects.filter(username=dataset.BENCH_USER).delete()
    paths = {
        "stack list": reverse("admin:stacks_stack_changelist"),
        "stack page": reverse("admin:stacks_stack_change", args=[marker["objects"]["stack"]]),
        "dashboard": reverse("admin:ops_dashboard"),
        "login": reverse("admin:login"),
    }
    assert User.objects.filter(username=dataset.BENCH_USER, is_superuser=True).exists()

    workdir = Path(tempfile.mkdtemp(prefix="cfadmin-bench-web-"))
    docker_command = dockerfile_command()
    workers = option(docker_command, "--workers") or "1 (gunicorn's default)"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = with_option(docker_command, "--bind", f"127.0.0.1:{port}")
    if args.workers:
        command = with_option(command, "--workers", str(args.workers))
    env = server_environment(dataset.database_url("pg", "large"), workdir / "static")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        env=env,
        cwd=BASE_DIR,
        check=True,
    )
    print(f"Dockerfile CMD: {shlex.join(docker_command)}")
    print(
        f"gunicorn workers: {workers} (Dockerfile)"
        + (f", running with {args.workers} (--workers)" if args.workers else "")
        + f"; {os.cpu_count()} CPU cores here, shared with locust"
    )
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), *command[1:]],
        env=env,
        cwd=BASE_DIR,
        stdout=open(workdir / "access.log", "w"),  # noqa: SIM115  (closed with the process)
        stderr=open(workdir / "gunicorn.log", "w"),  # noqa: SIM115
    )
    results: list[tuple[str, int, dict[str, Any]]] = []
    try:
        wait_until_up(url)
        started = time.monotonic()
        sessions = log_in_sessions(
            url, paths["login"], max(args.clients), dataset.BENCH_USER, dataset.BENCH_PASSWORD
        )
        took = time.monotonic() - started
        print(f"{len(sessions)} sessions logged in through the login form in {took:.0f} s")
        (workdir / "sessions").write_text("\n".join(sessions))
        locust_env = {
            **os.environ,
            "BENCH_PATHS": json.dumps(paths),
            "BENCH_SESSIONS": str(workdir / "sessions"),
            "BENCH_USERNAME": dataset.BENCH_USER,
            "BENCH_PASSWORD": dataset.BENCH_PASSWORD,
        }
        for endpoint in args.endpoints:
            for clients in args.clients:
                print(f"  {endpoint}, {clients} clients, {args.seconds} s…", flush=True)
                for row in run_locust(url, endpoint, clients, args.seconds, locust_env, workdir):
                    results.append((endpoint, clients, row))
    finally:
        server.terminate()
        server.wait(timeout=30)
    report(results, args.seconds)
    print(f"(logs in {workdir})")


def report(results: list[tuple[str, int, dict[str, Any]]], seconds: int) -> None:
    print()
    header = (
        f"{'endpoint':<14} {'request':<12} {'clients':>7} {'req/s':>7} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'p99 ms':>7} {'requests':>9} {'errors':>7}"
    )
    print(header)
    print("-" * len(header))
    for endpoint, clients, row in results:
        print(
            f"{endpoint:<14} {row['Name']:<12} {clients:>7} {float(row['Requests/s']):>7.1f} "
            f"{row['50%']:>7} {row['95%']:>7} {row['99%']:>7} {row['Request Count']:>9} "
            f"{row['Failure Count']:>7}"
        )
    rate = {
        (endpoint, clients): float(row["Requests/s"])
        for endpoint, clients, row in results
        if row["Name"] == endpoint
    }
    errors = {(endpoint, clients): int(row["Failure Count"]) for endpoint, clients, row in results}
    print()
    top = max((c for _, c in rate), default=0)
    if ("dashboard", top) in rate and ("stack list", top) in rate:
        ok = rate[("dashboard", top)] >= rate[("stack list", top)]
        print(
            f"  {'PASS' if ok else 'FAIL'}  dashboard serves at least as many requests/s as the "
            f"stack list at {top} clients ({rate[('dashboard', top)]:.1f} vs "
            f"{rate[('stack list', top)]:.1f})"
        )
    failed = [f"{e} at {c} ({n})" for (e, c), n in errors.items() if n and c == top]
    print(
        f"  {'PASS' if not failed else 'FAIL'}  0 errors at {top} clients"
        + (f": {', '.join(failed)}" if failed else "")
    )


if __name__ == "__main__":
    main()
