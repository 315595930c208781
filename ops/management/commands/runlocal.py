"""Run cfadmin on one machine: web, a django-q2 worker, and — unless COOLIFY_URL/POCKETBASE_URL
point elsewhere — the Coolify simulator and a local PocketBase. Ctrl-C stops everything started.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cfadmin.queued_once import AlreadyQueued
from ops.health import request_health_run


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
            with contextlib.suppress(AlreadyQueued):
                request_health_run("runlocal")
            self.stdout.write(
                self.style.SUCCESS(
                    f"cfadmin is up: http://{options['bind']}/admin/  (Ctrl-C stops everything)"
                )
            )
            self.stdout.write(
                f"  Coolify:    {child_env.get('COOLIFY_URL')}"
                + ("  ← SIMULATOR, not a real Coolify" if not settings.COOLIFY_URL else "")
            )
            self.stdout.write(
                f"  PocketBase: {child_env.get('POCKETBASE_URL')}"
                + ("  (local, data in data/pocketbase)" if not settings.POCKETBASE_URL else "")
            )
            self.watch()
        except KeyboardInterrupt:
            pass
        finally:
            self.shutdown()

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
        return {"COOLIFY_URL": url, "COOLIFY_TOKEN": token}

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
