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

Phase 3 — a template rolled to the fleet: 200+ stacks deployed first (no limit, quick), then
every one redeployed as background operations (request_operations(background=True): the
dispatcher hands BACKGROUND_OPERATIONS_IN_FLIGHT to the workers at a time) with Coolify's 200
calls/min enforced, polling every 3 s (the default), the schedules running beside. Prints
Coolify calls per redeploy (the simulator's counters over the redeploys, by route), redeploys per
minute, and the projected time to roll a template to 10,000 stacks under one token's 200
calls/min and under the background share of it (what background calls may use; goal < 2 h).

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


BACKGROUND_SHARE = 0.25  # COOLIFY_BACKGROUND_RESERVE_SHARE's default: kept for people
STATUS_ROUTE = "GET /api/v1/services"
FLEET = 10_000  # stacks a template is rolled to, for the projection
GOAL_MINUTES = 120.0
API_LIMIT = 200  # Coolify's default throttle:api, per token's user and minute


def sim_call(port: int, method: str, path: str, payload: dict | None = None) -> dict:
    import httpx

    answer = httpx.request(
        method,
        f"http://127.0.0.1:{port}{path}",
        headers={"Authorization": f"Bearer {TOKEN}"},  # control endpoints take the token
        json=payload,
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def run_rollout(
    *,
    workdir: Path,
    pocketbase_url: str,
    stacks: int,
    tenants: int,
    workers: int,
    latency: float,
    start_seconds: float,
    queue_seconds: float,
) -> dict:
    """Phase 3 in fresh processes: deploy the fleet with no limit, then redeploy all of it as
    background operations under Coolify's limit; the figures of the redeploys alone."""
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'rollout.sqlite3'}",
        "COOLIFY_URL": f"http://127.0.0.1:{port}",
        "COOLIFY_TOKEN": TOKEN,
        "POCKETBASE_URL": pocketbase_url,
        "POCKETBASE_EMAIL": PB_EMAIL,
        "POCKETBASE_PASSWORD": PB_PASSWORD,
        "PROVISION_POLL_INTERVAL": "3.0",  # the default
        "BACKGROUND_OPERATIONS_IN_FLIGHT": str(workers),
        "Q_WORKERS": str(workers),
        "Q_SYNC": "false",
        "LOG_LEVEL": "WARNING",
        "OPERATION_SUCCESS_HOOKS": "",  # the redeploys' own calls, no checklist probes
    }
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)
    # The fleet is deployed quickly and unthrottled: only the redeploys are measured.
    simulator = start(
        [
            *manage,
            "coolify_simulator",
            *("--port", str(port), "--token", TOKEN, "--latency", str(latency)),
            *("--rate-limit", "0", "--start-seconds", "0.2", "--queue-seconds", "0.1"),
            *("--refresh-seconds", "0", "--health-seconds", "0", "--save-seconds", "0"),
        ],
        env,
        workdir / "simulator-rollout.log",
    )
    wait_http(f"http://127.0.0.1:{port}/api/health")
    child = [sys.executable, __file__]
    subprocess.run(
        [*child, "_enqueue", "--stacks", str(stacks), "--tenants", str(tenants), "--label", "r"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    worker_log = workdir / "qcluster-rollout.log"
    worker = start([*child, "_qcluster"], env, worker_log)
    try:
        deployed = subprocess.run(
            [*child, "_wait", "--expect", str(stacks), "--kind", "deploy"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        before = sim_call(port, "GET", "/_sim/state")
        # Coolify's limit from now on, and a restart's pace: its compose run reads
        # `starting:unhealthy` for start_seconds, longer than a poll (3 s), so every redeploy's
        # wait sees the service go down and come back.
        sim_call(
            port,
            "POST",
            "/_sim/config",
            {
                "rate_limit_per_minute": API_LIMIT,
                "start_seconds": start_seconds,
                "queue_seconds": queue_seconds,
            },
        )
        started = time.monotonic()
        subprocess.run([*child, "_redeploy"], env=env, check=True, capture_output=True)
        done = subprocess.run(
            [*child, "_wait", "--expect", str(stacks), "--kind", "redeploy"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.monotonic() - started
        after = sim_call(port, "GET", "/_sim/state")
    finally:
        stop(worker)
        stop(simulator)
    figures = json.loads(done.stdout)
    routes = {
        route: count - before["calls_by_route"].get(route, 0)
        for route, count in after["calls_by_route"].items()
        if count > before["calls_by_route"].get(route, 0)
    }
    figures.update(
        wall=wall,
        deploys_failed=json.loads(deployed.stdout)["failed"],
        calls=after["call_count"] - before["call_count"],
        calls_by_route=routes,
        rate_limited=after["rate_limited"] - before["rate_limited"],
        pacing=pacing_totals(worker_log),
    )
    return figures


def redeploy_all() -> None:
    """(In a child process.) Every stack's redeploy, as a rollout requests them."""
    import django

    django.setup()
    from stacks.choices import OperationKind
    from stacks.models import Stack
    from stacks.services import request_operations

    queued, skipped = request_operations(
        Stack.objects.order_by("pk"), OperationKind.REDEPLOY, actor="bench", background=True
    )
    print(json.dumps({"queued": len(queued), "skipped": len(skipped)}))


# What each route of a redeploy is for, and whether a redeploy could do without it.
ROUTE_NOTES = {
    "PATCH /api/v1/services/{uuid}": "the new compose and domains (needed when they changed)",
    "PATCH /api/v1/services/{uuid}/envs/bulk": "the env values: left out by a background "
    "redeploy when unchanged since last pushed (here: none changed)",
    "POST /api/v1/services/{uuid}/restart": "the restart (not folded into the PATCH's "
    "instant_deploy: that start never stops the service first, so no status read tells it ran)",
    "GET /api/v1/services": "status polls, one shared read per 3 s for all workers: per "
    "redeploy it shrinks as more run at once; reconcile's reads too",
}


def print_rollout(figures: dict, stacks: int, workers: int) -> None:
    span = figures["last_finished"] - figures["first_requested"]
    per = figures["calls"] / stacks
    rate = stacks / span * 60
    print(
        f"  redeploys: {figures['succeeded']} succeeded, {figures['failed']} failed of {stacks} "
        f"(fleet deploys failed: {figures['deploys_failed']})"
    )
    for error in figures["errors"]:
        print(f"        error: {error}")
    print(
        f"  Coolify calls per redeploy: {per:.2f} ({figures['calls']} calls during the "
        f"redeploys, schedules included)"
    )
    for route, count in sorted(figures["calls_by_route"].items(), key=lambda rc: -rc[1]):
        note = ROUTE_NOTES.get(route, "")
        print(f"    {count / stacks:>5.2f}  {route}{'  — ' + note if note else ''}")
    print(f"  redeploys per minute: {rate:.1f} (wall {figures['wall']:.0f} s, {workers} in flight)")
    pacing = figures["pacing"]
    print(
        f"  answered 429: {figures['rate_limited']} (target 0); paced: {pacing['paced_waits']} "
        f"calls held back, {pacing['paced_seconds']:.1f} s in total"
    )
    # The shared status reads are a cost per minute (one read per poll round for every
    # redeploy in flight), not per redeploy: what is left of the limit after them goes to the
    # redeploys' own calls.
    minutes_measured = figures["wall"] / 60
    reads_per_minute = figures["calls_by_route"].get(STATUS_ROUTE, 0) / minutes_measured
    own = (figures["calls"] - figures["calls_by_route"].get(STATUS_ROUTE, 0)) / stacks
    print(
        f"  per redeploy {own:.2f} calls of its own; shared status reads "
        f"{reads_per_minute:.1f} a minute whatever the number in flight"
    )
    people = API_LIMIT * BACKGROUND_SHARE
    for label, per_minute in (
        (f"one token's {API_LIMIT} calls/min, nobody else calling", API_LIMIT),
        (
            f"the same while people use a quarter of it ({people:.0f} calls/min) all along",
            API_LIMIT - people,
        ),
    ):
        minutes = FLEET * own / max(per_minute - reads_per_minute, 1)
        verdict = "PASS" if minutes < GOAL_MINUTES else "FAIL"
        print(
            f"  {FLEET:,} stacks under {label}: {minutes:.0f} min "
            f"(goal < {GOAL_MINUTES:.0f}) {verdict}"
        )
    needed = FLEET / GOAL_MINUTES  # redeploys a minute for the goal
    duration = figures["operation_seconds"] / stacks  # one redeploy, claimed to finished
    measured = FLEET / rate
    print(
        f"  at the measured rate ({workers} in flight): {measured:.0f} min "
        f"{'PASS' if measured < GOAL_MINUTES else 'FAIL'}. The goal needs "
        f"{needed:.0f} redeploys/min: about {needed * duration / 60:.0f} in flight at "
        f"{duration:.0f} s a redeploy (BACKGROUND_OPERATIONS_IN_FLIGHT and Q_WORKERS)"
    )


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


def wait(expect: int, kind: str = "", timeout: float = 1800.0) -> None:
    """(In a child process.) Wait until every operation (of `kind`) ended; print their
    figures."""
    import django

    django.setup()
    from stacks.choices import OperationStatus
    from stacks.models import Operation

    chosen = Operation.objects.filter(kind=kind) if kind else Operation.objects.all()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finished = chosen.filter(
            status__in=[OperationStatus.SUCCEEDED, OperationStatus.FAILED]
        ).count()
        if finished >= expect:
            break
        time.sleep(0.2)
    operations = list(chosen)
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
    polls = figures["calls_by_route"].get(STATUS_ROUTE, 0)
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
    parser.add_argument("--rollout-stacks", type=int, default=220, help="phase 3's fleet")
    parser.add_argument(
        "--rollout-workers",
        type=int,
        default=20,
        help="phase 3's workers, and BACKGROUND_OPERATIONS_IN_FLIGHT (the goal needs ~16)",
    )
    parser.add_argument(
        "--restart-seconds",
        type=float,
        default=8.0,
        help="phase 3: a restart's compose run (longer than a 3 s poll: see run_rollout)",
    )
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-rollout", action="store_true")
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
                f"{figures['calls_by_route'].get(STATUS_ROUTE, 0)})"
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
        if not args.skip_rollout:
            print(
                f"\nPhase 3: a template rolled to {args.rollout_stacks} deployed stacks — "
                f"background redeploys, {args.rollout_workers} workers and in flight, Coolify's "
                f"{API_LIMIT} calls/min enforced, polling every 3 s, compose run "
                f"{args.restart_seconds} s"
            )
            figures = run_rollout(
                workdir=workdir,
                pocketbase_url=pocketbase.url,
                stacks=args.rollout_stacks,
                tenants=args.tenants,
                workers=args.rollout_workers,
                latency=args.latency,
                start_seconds=args.restart_seconds,
                queue_seconds=args.queue_seconds,
            )
            print_rollout(figures, args.rollout_stacks, args.rollout_workers)
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
        sub.add_argument("--kind", default="")
        a = sub.parse_args()
        wait(a.expect, a.kind)
    elif len(sys.argv) > 1 and sys.argv[1] == "_redeploy":
        redeploy_all()
    else:
        main()
