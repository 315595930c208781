"""Run the Coolify simulator on loopback (used by `make run` and the benchmark)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from stacks.coolify_simulator.api import Timings
from stacks.coolify_simulator.server import Fault, build, save_state


class Command(BaseCommand):
    help = "Serve a stateful SIMULATED Coolify API on 127.0.0.1 (not a real Coolify)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=8711)
        parser.add_argument("--token", required=True, help="the API token it accepts (root)")
        parser.add_argument("--latency", type=float, default=0.0, help="seconds added per call")
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=200,
            help="calls per minute per token user (Coolify: 200); 0 = off",
        )
        # Defaults for `make run`: Coolify's shape at a watchable speed (real Coolify: queue
        # lag ~1 s, compose up 10-60 s, status check every 60 s, healthcheck start period).
        for flag, default, text in (
            ("--queue-seconds", 1.0, "lag before a queued job runs"),
            ("--start-seconds", 2.0, "`docker compose up` (the service reads starting:unhealthy)"),
            ("--stop-seconds", 1.0, "`docker stop` + `docker rm -f` of a stack"),
            ("--save-seconds", 1.0, "config save between stop and compose up (a restart's exited)"),
            (
                "--delete-seconds",
                1.0,
                "a delete job's cleanup after its stop; then the row is gone",
            ),
            ("--refresh-seconds", 5.0, "container status check period (statuses lag until then)"),
            ("--health-seconds", 3.0, "a Docker healthcheck stays `starting` this long"),
        ):
            parser.add_argument(flag, type=float, default=default, help=text)
        parser.add_argument(
            "--noise-seed",
            type=int,
            default=None,
            help="random but reproducible status noise (jittered lag, half-up stacks); "
            "default: none",
        )
        parser.add_argument(
            "--state-file",
            default="",
            help="load the state from this JSON file and save it there on exit (mode 0600: "
            "it holds env values)",
        )
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="JSON",
            help='e.g. \'{"path": "/api/v1/services", "method": "POST", '
            '"kind": "error", "times": 1}\'',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        server = build(
            token=options["token"],
            port=options["port"],
            latency=options["latency"],
            rate_limit_per_minute=options["rate_limit"],
            timings=Timings(
                start_seconds=options["start_seconds"],
                stop_seconds=options["stop_seconds"],
                delete_seconds=options["delete_seconds"],
                queue_seconds=options["queue_seconds"],
                refresh_seconds=options["refresh_seconds"],
                health_seconds=options["health_seconds"],
                save_seconds=options["save_seconds"],
            ),
            noise_seed=options["noise_seed"],
        )
        state_file = Path(options["state_file"]) if options["state_file"] else None
        if state_file and state_file.is_file():
            server.api.import_state(json.loads(state_file.read_text()))
        for raw in options["fault"]:
            try:
                server.add_fault(Fault(**json.loads(raw)))
            except (ValueError, TypeError) as exc:
                raise CommandError(f"--fault {raw!r}: {exc}") from exc
        self.stdout.write(
            self.style.WARNING(
                f"COOLIFY SIMULATOR (not a real Coolify) on {server.url} — latency "
                f"{options['latency']}s, rate limit {options['rate_limit'] or 'off'}/min, "
                f"control endpoints under {server.url}/_sim/ (with the token)"
            )
        )
        self.stdout.flush()
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            server.serve_forever()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            server.httpd.server_close()
            if state_file:
                save_state(state_file, server.api.export_state())


def _exit_on_sigterm(*_: Any) -> None:
    raise SystemExit(0)
