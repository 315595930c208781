"""Reconcile benchmark (`make bench-reconcile`, also part of `make bench`): how long comparing
cfadmin with Coolify and PocketBase takes, and how much memory and how many queries it needs,
as the platform grows.

For 100, 1,000 and 5,000 running stacks (10 per tenant, one domain each) it builds Coolify's
`GET /services` answer and PocketBase's records as they would arrive, with 1 % of the stacks
drifted (a stopped service, a missing record, an orphan service), and times
`stacks.reconcile.find_drift` — the part that grows with the platform (fetching the lists is
one paged call each). Prints time per stack, database queries (the target: the same number
at every size) and peak Python memory per stack.

Runs in one process on a throwaway SQLite database; nothing leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))
SIZES = (100, 1_000, 5_000)
DRIFT_EVERY = 100  # 1 % of the stacks drift


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="cfadmin-bench-reconcile-"))
    database = workdir / "bench.sqlite3"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"sqlite:///{database}",
        LOG_LEVEL="WARNING",
    )
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput", "-v", "0"],
        env=os.environ,
        check=True,
    )
    import django

    django.setup()
    print(f"{'stacks':>7} {'drift':>6} {'time':>9} {'per stack':>10} {'queries':>8} {'memory':>9}")
    for size in SIZES:
        services, records = populate(size)
        figures = measure(services, records)
        print(
            f"{size:>7} {figures['drift']:>6} {figures['seconds'] * 1000:>7.0f} ms "
            f"{figures['seconds'] / size * 1e6:>7.0f} µs {figures['queries']:>8} "
            f"{figures['peak'] / size / 1024:>6.1f} KiB"
        )


def populate(size: int) -> tuple[list[dict], list[dict]]:
    """`size` running stacks in the database; Coolify's and PocketBase's answers for them."""
    from django.utils import timezone

    from stacks.models import Stack, StackDomain
    from tenants.models import Tenant

    StackDomain.objects.all().delete()
    Stack.objects.all().delete()
    Tenant.objects.all().delete()
    tenants = Tenant.objects.bulk_create(
        Tenant(slug=f"t{i:05d}", name=f"Tenant {i}") for i in range(size // 10)
    )
    a_while_ago = timezone.now() - timedelta(hours=1)
    stacks = Stack.objects.bulk_create(
        Stack(
            tenant=tenants[i // 10],
            project_name=f"{tenants[i // 10].slug}-project",
            stack_name=f"s{i:05d}",
            template_name="openclaw-agent",
            template_version="bench",
            status="running",
            coolify_project_uuid=f"p{i // 10:05d}",
            coolify_service_uuid=f"svc{i:05d}",
            pocketbase_id=f"rec{i:05d}",
        )
        for i in range(size)
    )
    Stack.objects.update(updated_at=a_while_ago)
    StackDomain.objects.bulk_create(
        StackDomain(stack=stack, service="webui", domain=f"{stack.stack_name}.bench.example.com")
        for stack in stacks
    )
    services, records = [], []
    for i, stack in enumerate(stacks):
        tenant = tenants[i // 10].slug
        services.append(
            {
                "uuid": stack.coolify_service_uuid,
                "name": stack.stack_name,
                "status": "exited" if i % DRIFT_EVERY == 1 else "running:healthy",
                "description": f"cfadmin stack {tenant}/{stack.stack_name} (openclaw-agent bench)",
            }
        )
        if i % DRIFT_EVERY != 2:
            records.append(
                {
                    "id": stack.pocketbase_id,
                    "tenant": tenant,
                    "stack_name": stack.stack_name,
                    "template": "openclaw-agent",
                    "status": "running",
                    "project_uuid": stack.coolify_project_uuid,
                    "service_uuid": stack.coolify_service_uuid,
                    "domains": [f"{stack.stack_name}.bench.example.com"],
                }
            )
    for i in range(0, size, DRIFT_EVERY):
        services.append(
            {
                "uuid": f"orphan{i:05d}",
                "name": f"lost{i:05d}",
                "status": "running:healthy",
                "description": f"cfadmin stack gone/lost{i:05d} (openclaw-agent bench)",
            }
        )
    return services, records


def measure(services: list[dict], records: list[dict]) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from stacks.reconcile import find_drift

    find_drift(services, records)  # warm caches (templates, content types)
    tracemalloc.start()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        drift, checked = find_drift(services, records)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert checked == len([s for s in services if not s["uuid"].startswith("orphan")])
    return {"drift": len(drift), "seconds": seconds, "queries": len(queries), "peak": peak}


if __name__ == "__main__":
    main()
