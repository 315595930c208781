"""Run cfadmin on one machine: the web server and a django-q2 worker, until Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the web server and a qcluster worker; Ctrl-C stops everything started."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default=settings.CFADMIN_BIND, help="host:port to serve on")

    def processes(self, bind: str) -> list[tuple[str, list[str]]]:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        return [
            ("worker", [*manage, "qcluster"]),
            ("web", [*manage, "runserver", bind, "--noreload"]),
        ]

    def handle(self, *args: Any, **options: Any) -> None:
        started: list[tuple[str, subprocess.Popen]] = []
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        try:
            for name, argv in self.processes(options["bind"]):
                # Own session: a terminal Ctrl-C reaches only us, and we stop each child once,
                # in order (qcluster stops slowly when its workers get the SIGINT too).
                started.append((name, subprocess.Popen(argv, start_new_session=True)))
            self.stdout.write(
                self.style.SUCCESS(
                    f"cfadmin is up: http://{options['bind']}/admin/ (worker + web; Ctrl-C stops)"
                )
            )
            while not stopping:
                for name, process in started:
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with status {process.returncode}")
                        stopping = True
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.shutdown(started)

    def shutdown(self, started: list[tuple[str, subprocess.Popen]]) -> None:
        for _, process in reversed(started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, process in reversed(started):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it")
                process.kill()
                process.wait()
        self.stdout.write("cfadmin stopped.")
