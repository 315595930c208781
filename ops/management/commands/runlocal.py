"""Run cfadmin on one machine: web, a django-q2 worker, and — unless COOLIFY_URL/POCKETBASE_URL
point elsewhere — the Coolify simulator and a local PocketBase. Ctrl-C stops everything started.

Unless EMAIL_HOST/EMAIL_PORT name a mail server, a local mail catcher takes every e-mail the
web and the worker send (cfadmin.management.mail_catcher: printed here, kept in data/mailbox/),
and the Platform Down contact gets a development e-mail channel if it has none, so an incident
opened shows its page arriving.

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

from cfadmin.management import startup_summary as summary_box
from cfadmin.management.mail_catcher import MailCatcher
from cfadmin.queued_once import AlreadyQueued
from ops.health import health_run_began_since, request_health_run
from ops.models import EscalationContact, NotificationChannel
from ops.notifications import channels

SETTLE_SECONDS = 30.0  # at most this long between starting the children and the summary
# The e-mail settings' defaults (cfadmin.settings_ops): anything else names a real mail server.
DEFAULT_EMAIL_SERVER = ("127.0.0.1", 25)
# Development only: where the Platform Down contact is paged when it has no channel yet.
DEV_PAGING_ISSUE_TYPE = "Platform Down"
DEV_PAGING_ADDRESS = "platform-team@localhost"


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
        self.mail_lines: list[str] = []
        try:
            child_env.update(self.start_mail_catcher())
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
        return summary_box.startup_summary(
            url,
            [
                f"Coolify:    {child_env.get('COOLIFY_URL')}"
                + ("  ← SIMULATOR, not a real Coolify" if settings.COOLIFY_SIMULATED else ""),
                f"PocketBase: {child_env.get('POCKETBASE_URL')}"
                + ("  (local, data in data/pocketbase)" if settings.POCKETBASE_LOCAL else ""),
                summary_box.status_page_line(url),
                *self.mail_lines,
            ],
        )

    def start_mail_catcher(self) -> dict[str, str]:
        """A local SMTP server for the children, unless a mail server is configured."""
        if (settings.EMAIL_HOST, settings.EMAIL_PORT) != DEFAULT_EMAIL_SERVER:
            self.mail_lines = summary_box.mail_lines(
                caught=False, server=f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
            )
            return {}
        catcher = MailCatcher(settings.DATA_DIR, self.stdout.write).start()
        self.started.append(("mail-catcher", catcher))
        self.mail_lines = summary_box.mail_lines(
            caught=True, server=f"{catcher.host}:{catcher.port}", paged=self.dev_paging_channel()
        )
        return catcher.env()

    def dev_paging_channel(self) -> str:
        """The Platform Down contact's development channel, added when it has none; its
        address ("" when the contact has channels of its own or does not exist)."""
        contact = EscalationContact.objects.filter(issue_type__iexact=DEV_PAGING_ISSUE_TYPE).first()
        if contact is None or contact.channels.exists():
            return ""
        channel = NotificationChannel(contact=contact, label="development (make run)")
        channels.set_url(channel, DEV_PAGING_ADDRESS)
        channel.save()
        return f"{contact.issue_type} → {contact.team}: {DEV_PAGING_ADDRESS}"

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
            f"--token={token}",  # one argument: a token may begin with "-" (token_urlsafe)
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
            if hasattr(process, "stop"):  # LocalPocketBase, the mail catcher
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
