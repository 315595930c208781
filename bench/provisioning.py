"""Provisioning benchmark (`make bench`): real queue, real qcluster workers, the simulator.

Phase 1 — overhead and scaling: 50 deploys with a fixed simulated latency per Coolify call and
a fixed start-up time, no rate limit, for 1, 2 and 4 workers. Prints the wall time, the sum of
simulated remote time, and cfadmin's own overhead per deploy (operation time minus remote
time); the target is under 5 % of the remote time, and near-linear speed-up with workers.

Phase 2 — Coolify's 200 calls/min: the same 50 deploys with the simulator enforcing the limit,
with enough workers (6) that the call budget, not waiting, bounds it. Prints Coolify calls per
deploy and deploys per minute (target ≥ 36/min), how many calls were answered 429 (target: none;
cfadmin paces itself to the limit, stacks/clients/pacing.py) and how long the workers held calls
back to stay within it.

Everything runs on loopback: a throwaway SQLite database, the simulator, a local PocketBase.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

TOKEN = "bench-simulator-token"
PB_EMAIL = "bench@example.com"
PB_PASSWORD = "bench-only-password-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_http(url: str, timeout: float = 20.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def run_phase(
    *,
    label: str,
    workdir: Path,
    pocketbase_url: str,
    stacks: int,
    tenants: int,
    workers: int,
    latency: float,
    start_seconds: float,
    queue_seconds: float,
    rate_limit: int,
    poll_interval: float,
    validation: bool,
) -> dict:
    """One measured run in fresh processes; returns the figures."""
    import httpx

    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    database = workdir / f"{label}.sqlite3"
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "COOLIFY_URL": f"http://127.0.0.1:{port}",
        "COOLIFY_TOKEN": TOKEN,
        "POCKETBASE_URL": pocketbase_url,
        "POCKETBASE_EMAIL": PB_EMAIL,
        "POCKETBASE_PASSWORD": PB_PASSWORD,
        "PROVISION_POLL_INTERVAL": str(poll_interval),
        "Q_WORKERS": str(workers),
        "Q_SYNC": "false",
        "LOG_LEVEL": "WARNING",
        # Phase 1 measures provisioning alone: the post-deploy checklist's probes run after an
        # operation ends and would count as remote time it never spent.
        "OPERATION_SUCCESS_HOOKS": "ops.checklists.open_validation_run" if validation else "",
    }
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)
    simulator = start(
        [
            *manage,
            "coolify_simulator",
            "--port",
            str(port),
            "--token",
            TOKEN,
            "--latency",
            str(latency),
            "--rate-limit",
            str(rate_limit),
            "--start-seconds",
            str(start_seconds),
            # Remote time (remote_seconds) is each call's latency, Coolify's queue lag and the
            # start-up; container checks follow the containers at once (no check period), no
            # healthcheck start period and no config-save pause, so that sum stays exact.
            "--queue-seconds",
            str(queue_seconds),
            "--refresh-seconds",
            "0",
            "--health-seconds",
            "0",
            "--save-seconds",
            "0",
        ],
        env,
        workdir / "simulator.log",
    )
    wait_http(f"http://127.0.0.1:{port}/api/health")
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "_enqueue",
            "--stacks",
            str(stacks),
            "--tenants",
            str(tenants),
            "--label",
            label,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    worker_log = workdir / f"qcluster-{label}.log"
    worker = start([sys.executable, __file__, "_qcluster"], env, worker_log)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, __file__, "_wait", "--expect", str(stacks)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.monotonic() - started
    stop(worker)
    state = httpx.get(
        f"http://127.0.0.1:{port}/_sim/state",
        headers={"Authorization": f"Bearer {TOKEN}"},  # control endpoints take the token
        timeout=10,
    ).json()
    stop(simulator)
    figures = json.loads(done.stdout)
    figures.update(json.loads(result.stdout))
    figures.update(
        wall=wall,
        calls_by_route=state["calls_by_route"],
        rate_limited=state["rate_limited"],
        calls=state["call_count"],
        pacing=pacing_totals(worker_log),
    )
    return figures


PACING_TOTALS = re.compile(
    r"totals pid=(?P<pid>\d+) calls=\d+ paced_waits=(?P<waits>\d+) "
    r"paced_seconds=(?P<seconds>[\d.]+) rate_limited=(?P<limited>\d+)"
)


def pacing_totals(log: Path) -> dict:
    """The pacers' counters, summed over worker processes: each pacing log line carries its
    process's running totals, so the last line of each process counts."""
    last: dict[str, re.Match] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = PACING_TOTALS.search(line)
        if match:
            last[match["pid"]] = match
    return {
        "processes": len(last),
        "paced_waits": sum(int(m["waits"]) for m in last.values()),
        "paced_seconds": sum(float(m["seconds"]) for m in last.values()),
        "rate_limited": sum(int(m["limited"]) for m in last.values()),
    }


def qcluster() -> None:
    """(A child.) `manage.py qcluster`, with the pacing log at debug (its lines carry each
    worker process's counters) whatever LOG_LEVEL says."""
    import logging

    from django.core.management import execute_from_command_line

    logging.getLogger("stacks.clients.pacing").setLevel(logging.DEBUG)
    execute_from_command_line([str(BASE_DIR / "manage.py"), "qcluster"])


def enqueue(stacks: int, tenants: int, label: str) -> None:
    """(In a child process with the phase's DATABASE_URL.) Make the stacks, queue the deploys."""
    import django

    django.setup()
    from django.db import transaction

    from stacks.choices import OperationKind
    from stacks.models import Stack, StackDomain, StackSecret
    from stacks.services import request_operation
    from tenants.models import Tenant

    tenant_rows = [
        Tenant.objects.create(slug=f"bench-{i:02d}", name=f"Bench {i}") for i in range(tenants)
    ]
    made = []
    for i in range(stacks):
        tenant = tenant_rows[i % tenants]
        stack = Stack.objects.create(
            tenant=tenant,
            project_name=f"{tenant.slug}-project",
            stack_name=f"{label}-{i:03d}",
            template_name="openclaw-agent",
        )
        StackDomain.objects.create(
            stack=stack, service="webui", domain=f"s{i}.{label}.bench.example.com"
        )
        secret = StackSecret(stack=stack, key="ANTHROPIC_API_KEY")
        secret.set_value(f"sk-bench-{i:04d}-not-a-real-key")
        secret.save()
        made.append(stack)
    with transaction.atomic():
        for stack in made:
            request_operation(stack, OperationKind.DEPLOY, actor="bench")
    print(json.dumps({"queued": len(made)}))


def wait(expect: int, timeout: float = 900.0) -> None:
    """(In a child process.) Wait until every operation ended; print their figures."""
    import django

    django.setup()
    from stacks.choices import OperationStatus
    from stacks.models import Operation

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finished = Operation.objects.filter(
            status__in=[OperationStatus.SUCCEEDED, OperationStatus.FAILED]
        ).count()
        if finished >= expect:
            break
        time.sleep(0.2)
    operations = list(Operation.objects.all())
    print(
        json.dumps(
            {
                "succeeded": sum(op.status == OperationStatus.SUCCEEDED for op in operations),
                "failed": sum(op.status == OperationStatus.FAILED for op in operations),
                "errors": sorted({op.error[:200] for op in operations if op.error}),
                "operation_seconds": sum((op.duration_ms or 0) for op in operations) / 1000,
                "first_requested": min(op.requested_at for op in operations).timestamp(),
                "last_finished": max(
                    op.finished_at for op in operations if op.finished_at
                ).timestamp(),
            }
        )
    )


def remote_seconds(figures: dict, latency: float, start_seconds: float, stacks: int) -> float:
    """Simulated remote time of all deploys: each non-polling call's latency + each start-up
    (`start_seconds` here includes Coolify's queue lag before the start job runs)."""
    polls = figures["calls_by_route"].get("GET /api/v1/services", 0)
    return (figures["calls"] - polls) * latency + stacks * start_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=50)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--start-seconds", type=float, default=2.0)
    parser.add_argument("--queue-seconds", type=float, default=1.0, help="Coolify's queue lag")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument(
        "--limited-workers",
        type=int,
        default=6,
        help="workers in phase 2: enough that Coolify's call budget, not waiting, is the bound",
    )
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-rate-limit", action="store_true")
    args = parser.parse_args()

    from stacks.local_pocketbase import start_pocketbase

    workdir = Path(tempfile.mkdtemp(prefix="cfadmin-bench-"))
    pocketbase = start_pocketbase(workdir / "pocketbase", email=PB_EMAIL, password=PB_PASSWORD)
    print(
        f"cfadmin provisioning benchmark — {args.stacks} deploys, {args.tenants} tenants, "
        f"simulated latency {args.latency * 1000:.0f} ms/call, start-up {args.start_seconds} s "
        f"after a queue lag of {args.queue_seconds} s"
    )
    print(f"(work files in {workdir})\n")
    try:
        walls = {}
        print("Phase 1: overhead and scaling (no rate limit)")
        print(
            f"{'workers':>7} {'wall s':>8} {'remote s':>9} {'overhead/deploy ms':>19} "
            f"{'overhead %':>10} {'speed-up':>8} {'ok/failed':>9} {'calls/deploy':>12}"
        )
        for workers in [] if args.skip_overhead else [int(w) for w in args.workers.split(",")]:
            figures = run_phase(
                label=f"w{workers}",
                workdir=workdir,
                pocketbase_url=pocketbase.url,
                stacks=args.stacks,
                tenants=args.tenants,
                workers=workers,
                latency=args.latency,
                start_seconds=args.start_seconds,
                queue_seconds=args.queue_seconds,
                rate_limit=0,
                poll_interval=0.02,
                validation=False,
            )
            remote = remote_seconds(
                figures, args.latency, args.queue_seconds + args.start_seconds, args.stacks
            )
            overhead = (figures["operation_seconds"] - remote) / args.stacks
            walls[workers] = figures["wall"]
            speedup = walls[min(walls)] / figures["wall"] * min(walls)
            print(
                f"{workers:>7} {figures['wall']:>8.1f} {remote:>9.1f} "
                f"{overhead * 1000:>19.0f} {overhead / (remote / args.stacks) * 100:>9.1f}% "
                f"{speedup:>7.2f}x {figures['succeeded']:>4}/{figures['failed']:<4} "
                f"{figures['calls'] / args.stacks:>12.1f}"
            )
            for error in figures["errors"]:
                print(f"        error: {error}")
        if not args.skip_rate_limit:
            print(
                f"\nPhase 2: Coolify's 200 calls/min enforced ({args.limited_workers} workers, "
                "polling every 3 s, post-deploy validation probes on)"
            )
            figures = run_phase(
                label="limited",
                workdir=workdir,
                pocketbase_url=pocketbase.url,
                stacks=args.stacks,
                tenants=args.tenants,
                workers=args.limited_workers,
                latency=args.latency,
                start_seconds=args.start_seconds,
                queue_seconds=args.queue_seconds,
                rate_limit=200,
                poll_interval=3.0,
                validation=True,
            )
            span = figures["last_finished"] - figures["first_requested"]
            print(
                f"  Coolify calls: {figures['calls']} ({figures['calls'] / args.stacks:.1f} per "
                f"deploy, of which status polls "
                f"{figures['calls_by_route'].get('GET /api/v1/services', 0)})"
            )
            print(f"  deploys per minute: {args.stacks / span * 60:.1f} (target >= 36)")
            print(
                f"  answered 429: {figures['rate_limited']} (target 0); operations failed: "
                f"{figures['failed']} of {args.stacks}"
            )
            pacing = figures["pacing"]
            print(
                f"  paced: {pacing['paced_waits']} calls held back, "
                f"{pacing['paced_seconds']:.1f} s in total, by {pacing['processes']} worker "
                f"processes (429s seen by the workers: {pacing['rate_limited']})"
            )
            print(
                "  calls by route: "
                + ", ".join(
                    f"{route} {count}" for route, count in sorted(figures["calls_by_route"].items())
                )
            )
    finally:
        pocketbase.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_enqueue":
        sub = argparse.ArgumentParser()
        sub.add_argument("_enqueue")
        sub.add_argument("--stacks", type=int)
        sub.add_argument("--tenants", type=int)
        sub.add_argument("--label")
        a = sub.parse_args()
        enqueue(a.stacks, a.tenants, a.label)
    elif len(sys.argv) > 1 and sys.argv[1] == "_qcluster":
        qcluster()
    elif len(sys.argv) > 1 and sys.argv[1] == "_wait":
        sub = argparse.ArgumentParser()
        sub.add_argument("_wait")
        sub.add_argument("--expect", type=int)
        wait(sub.parse_args().expect)
    else:
        main()
