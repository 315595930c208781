"""Real django-q2 worker clusters (qcluster) for integration tests: start one against the test
database, the Coolify simulator and a PocketBase; kill its whole process group; start it again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from django.db import connection

from tests.conftest import PB_EMAIL, PB_PASSWORD, SIM_TOKEN

BASE_DIR = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database as a URL the worker's settings read (SQLite file or PostgreSQL)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return (
        f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def worker_env(coolify_url: str, pocketbase_url: str, **overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "COOLIFY_URL": coolify_url,
        "COOLIFY_TOKEN": SIM_TOKEN,
        "POCKETBASE_URL": pocketbase_url,
        "POCKETBASE_EMAIL": PB_EMAIL,
        "POCKETBASE_PASSWORD": PB_PASSWORD,
        "PROVISION_POLL_INTERVAL": "0.1",
        "Q_SYNC": "false",
        "Q_WORKERS": "1",
        **overrides,
    }


class Worker:
    """One qcluster in its own process group (start_new_session), so a kill takes all of it:
    the cluster, its sentinel, its workers, monitor and pusher."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), "qcluster"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL the whole process group: nothing gets to clean up, as in a crash."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(15)
        self._close_log()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        # Also when the cluster itself has exited: a worker it left must not take later tests'
        # jobs from the shared test database.
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group
            os.killpg(self.process.pid, signal.SIGKILL)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
