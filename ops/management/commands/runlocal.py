"""Run cfadmin on one machine: web, a django-q2 worker, and — unless COOLIFY_URL/POCKETBASE_URL
point elsewhere — the Coolify simulator and a local PocketBase. Ctrl-C stops everything started.

Start-up ends with a box (cfadmin.management.startup_summary): the URL, the admin username, the
command that sets or resets its password, and a just-generated password, shown that once.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cfadmin.management.startup_summary import startup_summary
from cfadmin.queued_once import AlreadyQueued
from ops.health import health_run_began_since, request_health_run

SETTLE_SECONDS = 30.0  # at most this long between starting the children and the summary


class Command(BaseCommand):
    help = "Start web + worker (+ Coolify simulator and PocketBase when not configured)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default=settings.CFADMIN_BIND, help="host:port to serve on")

    def handle(self, *args: Any, **options: Any) -> None:
        self.started: list[tuple[str, Any]] = []
        self.stopping = False
        signal.signal(signal.SIGTERM, self._request_stop)
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        child_env = dict(os.environ)
        try:
            child_env.update(self.start_coolify(manage))
            child_env.update(self.start_pocketbase())
            for name, argv in (
                ("worker", [*manage, "qcluster"]),
                ("web", [*manage, "runserver", options["bind"], "--noreload"]),
            ):
                # Own session: a terminal Ctrl-C reaches only us, and we stop each child once,
                # in order (qcluster stops slowly when its workers get the SIGINT too).
                self.started.append(
                    (name, subprocess.Popen(argv, env=child_env, start_new_session=True))
                )
            # A first health-check round now, so the dashboard has something to show (a
            # request like any other: recorded, and not queued twice).
            health_request = None
            with contextlib.suppress(AlreadyQueued):
                health_request = request_health_run("runlocal")
            url = f"http://{options['bind']}/admin/"
            # The summary comes last: after the server answers and the worker's first burst.
            self.settle(url, health_request.occurred_at if health_request else None)
            self.stdout.write(self.summary(url, child_env))
            self.watch()
        except KeyboardInterrupt:
            pass
        finally:
            self.shutdown()

    def summary(self, url: str, child_env: dict[str, str]) -> str:
        """The closing box: URL, login, how to (re)set the password, the services started."""
        return startup_summary(
            url,
            [
                f"Coolify:    {child_env.get('COOLIFY_URL')}"
                + ("  ← SIMULATOR, not a real Coolify" if settings.COOLIFY_SIMULATED else ""),
                f"PocketBase: {child_env.get('POCKETBASE_URL')}"
                + ("  (local, data in data/pocketbase)" if settings.POCKETBASE_LOCAL else ""),
            ],
        )

    def settle(self, url: str, health_requested_at: datetime | None) -> None:
        """Wait (bounded) until the web server answers and the first health round is stored,
        so their start-up lines print before the summary, not under it."""
        deadline = time.monotonic() + SETTLE_SECONDS
        serving = False
        while time.monotonic() < deadline and not self._a_child_exited():
            if not serving:
                with contextlib.suppress(httpx.TransportError):
                    serving = httpx.get(f"{url}login/", timeout=1).status_code < 500
            if serving and (
                health_requested_at is None or health_run_began_since(health_requested_at)
            ):
                break
            time.sleep(0.2)
        if not serving:
            self.stderr.write(f"the web server has not answered on {url} yet")

    def _a_child_exited(self) -> bool:
        return any(
            hasattr(process, "poll") and process.poll() is not None for _, process in self.started
        )

    def _request_stop(self, *_: Any) -> None:
        self.stopping = True

    def watch(self) -> None:
        while not self.stopping:
            for name, process in self.started:
                if hasattr(process, "poll") and process.poll() is not None:
                    self.stderr.write(f"{name} exited with status {process.returncode}")
                    self.stopping = True
            time.sleep(0.5)

    def start_coolify(self, manage: list[str]) -> dict[str, str]:
        if not settings.COOLIFY_SIMULATED:
            return {}
        # The development .env's token; without one, a fresh token only the children know.
        token = settings.COOLIFY_TOKEN or secrets.token_urlsafe(24)
        port = settings.CFADMIN_SIMULATOR_PORT
        argv = [
            *manage,
            "coolify_simulator",
            "--port",
            str(port),
            "--token",
            token,
            "--state-file",
            str(settings.DATA_DIR / "coolify-simulator.json"),
        ]
        self.started.append(("coolify-simulator", subprocess.Popen(argv, start_new_session=True)))
        url = f"http://127.0.0.1:{port}"
        self._wait_until_up("coolify-simulator", f"{url}/api/health")
        env = {"COOLIFY_URL": url, "COOLIFY_TOKEN": token}
        if not settings.SERVER_COMMAND:
            # The simulated server's stand-in shell (free/df/docker stats/du of its containers),
            # reading the simulator's live state through COOLIFY_URL/COOLIFY_TOKEN; the token
            # stays in the environment, never on a command line.
            env["SERVER_COMMAND"] = (
                f"env PYTHONPATH={shlex.quote(str(settings.BASE_DIR))} "
                f"{shlex.quote(sys.executable)} -m stacks.coolify_simulator.server_shell "
                "--host {host} {command}"
            )
        return env

    def start_pocketbase(self) -> dict[str, str]:
        if not settings.POCKETBASE_LOCAL:
            return {}
        from stacks.clients.pocketbase import PocketBaseClient
        from stacks.local_pocketbase import PocketBaseUnavailable, start_pocketbase

        email = settings.POCKETBASE_EMAIL or "cfadmin@example.com"
        password = settings.POCKETBASE_PASSWORD or secrets.token_urlsafe(18)
        data_dir = settings.DATA_DIR / "pocketbase"
        try:
            server = start_pocketbase(
                data_dir,
                email=email,
                password=password,
                port=settings.CFADMIN_POCKETBASE_PORT,
                log_file=data_dir / "pocketbase.log",
            )
        except PocketBaseUnavailable as error:
            raise CommandError(f"cannot start the local PocketBase: {error}") from None
        self.started.append(("pocketbase", server))
        with PocketBaseClient(server.url, email=email, password=password) as client:
            client.ensure_collection()
        return {
            "POCKETBASE_URL": server.url,
            "POCKETBASE_EMAIL": email,
            "POCKETBASE_PASSWORD": password,
            "POCKETBASE_TOKEN": "",
        }

    def _wait_until_up(self, name: str, url: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise CommandError(f"{name} did not answer on {url} within {timeout:.0f}s")

    def shutdown(self) -> None:
        for name, process in reversed(self.started):
            if hasattr(process, "stop"):  # LocalPocketBase
                process.stop()
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it")
                process.kill()
                process.wait()
        self.stdout.write("cfadmin stopped.")
