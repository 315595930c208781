"""The simulator on a loopback socket, with latency and fault injection.

Faults match a method and a path pattern and fire a number of times (or always):
`timeout` (answer only after `delay` seconds — past the client's timeout), `error` (a 5xx),
`reset` (the connection is dropped with a TCP reset), `slow` (extra latency), `echo` (answers
`status` with a message and field errors quoting the request's body, decoded base64 too and its
Authorization header: a remote that echoes what it was sent). With phase `after`, the request
is carried out first and only its answer is lost — the case that makes a client retry a write
that already happened. Control endpoints live under /_sim/ (never /api) and need the
simulator's own token (`Authorization: Bearer <token>`): its state holds env values.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import os
import re
import socket
import struct
import threading
import time
from dataclasses import asdict, dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from stacks.coolify_simulator.api import SimulatedCoolify, Timings
from stacks.coolify_simulator.responses import Response

FAULT_KINDS = ("timeout", "error", "reset", "slow", "echo")


@dataclass
class Fault:
    path: str  # a regex matched against the whole path, e.g. r"/api/v1/services"
    kind: str
    method: str = "*"
    times: int | None = 1  # None: every matching call
    phase: str = "before"  # "before" the request is carried out, or "after" it
    status: int = 500
    delay: float = 5.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}")
        if self.phase not in ("before", "after"):
            raise ValueError("fault phase must be 'before' or 'after'")
        re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and re.fullmatch(self.path, path) is not None


class SimulatorServer:
    """Runs a SimulatedCoolify on 127.0.0.1 in a background thread (tests) or the foreground."""

    def __init__(
        self,
        api: SimulatedCoolify,
        *,
        control_token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        if not control_token:
            raise ValueError("the simulator needs a token for its /_sim/ control endpoints")
        self.api = api
        self.control_token = control_token
        self.latency = latency
        self.faults: list[Fault] = []
        self.fault_lock = threading.Lock()
        self.fired: list[dict[str, Any]] = []
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SimulatorServer:
        # A short poll interval: stop() returns quickly (tests start and stop many of these).
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def is_controller(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.control_token.encode()
        )

    def add_fault(self, fault: Fault) -> None:
        with self.fault_lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self.fault_lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str, phase: str) -> Fault | None:
        with self.fault_lock:
            for fault in self.faults:
                if fault.phase == phase and fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    self.fired.append({"method": method, "path": path, **asdict(fault)})
                    return fault
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "CoolifySimulator/1.0"

            def log_message(self, format: str, *args: Any) -> None:  # quiet by default
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; without this, Nagle's algorithm and
                # delayed ACKs add ~40 ms to every answer — a latency Coolify does not have.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _dispatch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                headers = {k.lower(): v for k, v in self.headers.items()}
                if path.startswith("/_sim/"):
                    if not server.is_controller(headers.get("authorization", "")):
                        self._send(Response(401, {"message": "Unauthenticated."}))
                        return
                    self._send(server.control(self.command, path, body))
                    return
                if server.latency:
                    time.sleep(server.latency)
                if self._fault(server.take_fault(self.command, path, "before"), headers, body):
                    return
                response = server.api.handle(self.command, self.path, headers, body)
                if self._fault(server.take_fault(self.command, path, "after"), headers, body):
                    return
                self._send(response)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _dispatch

            def _fault(self, fault: Fault | None, headers: dict[str, str], body: bytes) -> bool:
                if fault is None:
                    return False
                if fault.kind == "slow":
                    time.sleep(fault.delay)
                    return False
                if fault.kind == "error":
                    self._send(Response(fault.status, {"message": "Server Error"}))
                    return True
                if fault.kind == "echo":
                    self._send(echo_response(fault.status, headers, body))
                    return True
                if fault.kind == "timeout":
                    time.sleep(fault.delay)
                self._reset()
                return True

            def _reset(self) -> None:
                self.close_connection = True
                try:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
                except OSError:
                    pass

            def _send(self, response: Response) -> None:
                payload = response.encoded()
                try:
                    self.send_response(response.status)
                    self.send_header("Content-Type", f"{response.content_type}; charset=UTF-8")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True

        return Handler

    def control(self, method: str, path: str, body: bytes) -> Response:
        """/_sim/state, /_sim/faults, /_sim/tokens, /_sim/config (latency, rate limit, any
        Timings field, noise_seed), /_sim/reset."""
        payload = json.loads(body or b"{}") if body else {}
        if path == "/_sim/state" and method == "GET":
            return Response(
                200,
                {
                    **self.api.snapshot(),
                    "faults": [asdict(f) for f in self.faults],
                    "fired": self.fired,
                },
            )
        if path == "/_sim/faults" and method == "POST":
            try:
                self.add_fault(Fault(**payload))
            except (TypeError, ValueError) as exc:
                return Response(400, {"message": str(exc)})
            return Response(201, {"faults": [asdict(f) for f in self.faults]})
        if path == "/_sim/faults" and method == "DELETE":
            self.clear_faults()
            return Response(200, {"faults": []})
        if path == "/_sim/tokens" and method == "POST":
            self.api.add_token(
                payload["token"],
                set(payload.get("abilities", ["root"])),
                payload.get("user", "root"),
            )
            return Response(201, {"ok": True})
        if path == "/_sim/config" and method == "POST":
            if "latency" in payload:
                self.latency = float(payload["latency"])
            if "rate_limit_per_minute" in payload:
                self.api.rate_limit_per_minute = int(payload["rate_limit_per_minute"])
            if "noise_seed" in payload:
                seed = payload["noise_seed"]
                self.api.noise_seed = None if seed is None else int(seed)
            for name in fields(Timings):
                if name.name in payload:
                    setattr(self.api.timings, name.name, float(payload[name.name]))
            return Response(
                200,
                {
                    "latency": self.latency,
                    "rate_limit_per_minute": self.api.rate_limit_per_minute,
                    "timings": asdict(self.api.timings),
                    "noise_seed": self.api.noise_seed,
                },
            )
        if path == "/_sim/reset" and method == "POST":
            self.api.reset()
            self.clear_faults()
            self.fired.clear()
            return Response(200, {"ok": True})
        return Response(404, {"message": "Unknown simulator control endpoint."})


def echo_response(status: int, headers: dict[str, str], body: bytes) -> Response:
    """A remote that quotes what it was sent: the raw body, each string value (base64 ones
    decoded too) as a field error, and the Authorization header."""
    text = body.decode("utf-8", errors="replace")
    errors: dict[str, list[str]] = {}

    def walk(value: Any, name: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{name}.{key}" if name else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{name}.{index}")
        elif isinstance(value, str):
            errors[name] = [f"The {name} field is invalid: {value}"]
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                return
            errors[f"{name}.decoded"] = [f"Could not parse: {decoded}"]

    with contextlib.suppress(ValueError):  # not JSON: the message quotes it all the same
        walk(json.loads(text), "")
    return Response(
        status,
        {
            "message": f"Refused ({headers.get('authorization', 'no token')}): {text}",
            "errors": errors,
        },
    )


def build(
    *,
    token: str,
    port: int = 0,
    latency: float = 0.0,
    rate_limit_per_minute: int = 200,
    timings: Timings | None = None,
    noise_seed: int | None = None,
) -> SimulatorServer:
    api = SimulatedCoolify(
        rate_limit_per_minute=rate_limit_per_minute, timings=timings, noise_seed=noise_seed
    )
    api.add_token(token, {"root"})
    return SimulatorServer(api, control_token=token, port=port, latency=latency)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state readable by its owner only (it holds env values: API keys, tokens).

    The file is created 0600 and written through a temporary file renamed over the old one, so
    an old file with a wider mode, or a crash midway, never leaves the values readable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # O_CREAT's mode spares an existing file
            json.dump(state, handle)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)
