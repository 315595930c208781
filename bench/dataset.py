"""The admin and web benchmarks' datasets (issue 13), generated fast with bulk_create.

LARGE: 1,000 tenants, 10,000 stacks (domains, secrets), 50,000 operations (some with their
steps), 200,000 audit events over a year, 30 days of health results (every check every 5
minutes, HTTPS included), 2,000 incidents, 5,000 checklist runs with their items and evidence,
PocketBase outbox history, one stack with 1,005 operations and one finished reconcile run with
9,177 drift rows (PocketBase was reset: every record missing). SMALL is 1/100 of each.

Deterministic (seeded; times relative to when it was built). Each dataset has its own
database, migrated first: PostgreSQL `cfadmin_bench` / `cfadmin_bench_small` on 127.0.0.1, and
SQLite files in $TMPDIR/cfadmin-bench/. A marker row (a RemoteSnapshot named `bench:dataset`)
records what was built; a database whose marker does not match this module, the migrations on
disk, or is more than a day old is dropped and built again.

    python bench/dataset.py --db pg --size large     # build (or reuse) one dataset

Everything goes through the model classes, so fields other code adds with defaults come along;
`make_health` is the one place that knows how health results are stored.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[1]
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

SETTINGS = "bench.settings_admin"
MARKER = "bench:dataset"
SEED = 13
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
PG_NAMES = {"large": "cfadmin_bench", "small": "cfadmin_bench_small"}
SQLITE_DIR = Path(tempfile.gettempdir()) / "cfadmin-bench"
MAX_AGE = timedelta(days=1)  # health results and "today" filters need a recent dataset
BENCH_USER = "bench-admin"
# Loopback-only bench databases; bench-web logs in with it through the real login form.
BENCH_PASSWORD = "bench-only-password-7c1e"
BATCH = 2_000
HEALTH_INTERVAL = timedelta(minutes=5)
# HTTPS results carry every live domain; at 9,000 domains that is ~1.3 MB a row, so only the
# newest rows (more than any page shows: a list page, the dashboard's sparkline) are full size
# and older ones keep the first few domains. 30 days of full rows would be ~11 GB.
FULL_HTTPS_ROWS = 100
SHORT_HTTPS_DOMAINS = 20


@dataclass(frozen=True)
class Spec:
    tenants: int
    stacks: int
    operations: int
    audit_events: int
    health_runs: int  # runs of every check, 5 minutes apart
    incidents: int
    checklist_runs: int
    big_stack_operations: int
    drift_rows: int
    staff: int = 12
    reconcile_history: int = 96
    outages: int = 300

    def scaled(self, divisor: int) -> Spec:
        return Spec(**{k: max(1, v // divisor) for k, v in asdict(self).items()})


LARGE = Spec(
    tenants=1_000,
    stacks=10_000,
    operations=50_000,
    audit_events=200_000,
    health_runs=30 * 24 * 12,
    incidents=2_000,
    checklist_runs=5_000,
    big_stack_operations=1_005,
    drift_rows=9_177,
)
SMALL = replace(LARGE.scaled(100), staff=12)
SPECS = {"large": LARGE, "small": SMALL}
# For tests: a few of everything, built in well under a second.
TINY = Spec(
    tenants=4,
    stacks=20,
    operations=60,
    audit_events=200,
    health_runs=6,
    incidents=5,
    checklist_runs=12,
    big_stack_operations=12,
    drift_rows=9,
    staff=3,
    reconcile_history=2,
    outages=3,
)


# --- which database ------------------------------------------------------------------------


def database_url(db: str, size: str) -> str:
    if db == "pg":
        return f"{PG_SERVER}/{PG_NAMES[size]}"
    return f"sqlite:///{SQLITE_DIR / f'{size}.sqlite3'}"


def fingerprint(size: str) -> str:
    """What a dataset was built from: this module's generation code, the size and every
    migration on disk."""
    source = Path(__file__).read_text()
    digest = hashlib.sha256(source[source.index("# --- generation") :].encode())
    digest.update(size.encode())
    for path in sorted(BASE_DIR.glob("*/migrations/0*.py")):
        digest.update(path.relative_to(BASE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _stored_marker(db: str, size: str) -> dict[str, Any] | None:
    """The marker row, read without Django (before setup, so the database can be dropped)."""
    query = "SELECT data FROM stacks_remotesnapshot WHERE name = %s"
    try:
        if db == "pg":
            import psycopg

            with psycopg.connect(f"{PG_SERVER}/{PG_NAMES[size]}", connect_timeout=5) as conn:
                row = conn.execute(query, (MARKER,)).fetchone()
        else:
            path = SQLITE_DIR / f"{size}.sqlite3"
            if not path.exists():
                return None
            with sqlite3.connect(path) as conn:
                row = conn.execute(query.replace("%s", "?"), (MARKER,)).fetchone()
    except Exception:  # no database, no table: nothing to reuse
        return None
    if row is None:
        return None
    data = row[0]
    return json.loads(data) if isinstance(data, str) else data


def _reusable(marker: dict[str, Any] | None, size: str, expected: str) -> bool:
    if not marker or marker.get("fingerprint") != expected:
        return False
    built = datetime.fromisoformat(marker["built_at"])
    return datetime.now(built.tzinfo) - built < MAX_AGE


def _recreate(db: str, size: str) -> None:
    if db == "pg":
        import psycopg

        name = PG_NAMES[size]
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    else:
        SQLITE_DIR.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_DIR / size}.sqlite3{suffix}").unlink(missing_ok=True)


def open_dataset(db: str, size: str, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Point Django at the dataset's database, build it unless a matching one is there, and
    return its marker (the representative objects' keys, counts, how long it took)."""
    os.environ["DATABASE_URL"] = database_url(db, size)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    expected = fingerprint(size)  # before building: the code this process runs
    marker = _stored_marker(db, size)
    reuse = _reusable(marker, size, expected)
    if not reuse:
        _recreate(db, size)
    from django.apps import apps

    if apps.ready:
        use_database(db, size)
    else:
        import django

        django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if reuse:
        assert marker is not None
        log(f"{db} {size}: reusing the dataset built {marker['built_at'][:16]}")
        return {**marker, "reused": True}
    log(f"{db} {size}: generating the dataset…")
    started = time.monotonic()
    marker = build(SPECS[size], log=lambda line: log(f"  {line}"))
    analyze()
    marker["seconds"] = round(time.monotonic() - started, 1)
    marker["fingerprint"] = expected
    save_marker(marker)
    log(f"{db} {size}: generated in {marker['seconds']:.0f} s")
    return marker


def analyze() -> None:
    """Planner statistics for the fresh tables, as a live database has them (and so that
    autovacuum does not analyse them in the middle of the measurements)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def use_database(db: str, size: str) -> None:
    """Point an already set-up Django at another dataset's database (same engine): the admin
    benchmark measures both sizes in one process, alternating, so both see the same load."""
    import environ
    from django.contrib.contenttypes.models import ContentType
    from django.db import connections

    url = database_url(db, size)
    os.environ["DATABASE_URL"] = url
    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = environ.Env.db_url_config(url)["NAME"]
    ContentType.objects.clear_cache()  # ids are per database
    connection.ensure_connection()


def save_marker(marker: dict[str, Any]) -> None:
    from django.utils import timezone

    from stacks.models import RemoteSnapshot

    RemoteSnapshot.objects.update_or_create(
        name=MARKER, defaults={"data": marker, "fetched_at": timezone.now()}
    )


# --- generation ------------------------------------------------------------------------------


def _chunks(items: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _insert(model: Any, objects: Iterable[Any]) -> list[Any]:
    created: list[Any] = []
    for chunk in _chunks(objects):
        created += model.objects.bulk_create(chunk)
    return created


@contextmanager
def historical_timestamps() -> Iterator[None]:
    """auto_now / auto_now_add keep a value the generator set (history has its own dates);
    fields left empty still get now."""
    from django.apps import apps
    from django.utils import timezone

    patched = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):

                def pre_save(obj: Any, add: bool, _field: Any = field) -> Any:
                    value = getattr(obj, _field.attname)
                    if value is None:
                        value = timezone.now()
                        setattr(obj, _field.attname, value)
                    return value

                field.pre_save = pre_save
                patched.append(field)
    try:
        yield
    finally:
        for field in patched:
            del field.pre_save


def _uuid(rng: random.Random, length: int = 24) -> str:
    """Coolify's resource ids look like this (lowercase letters and digits)."""
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=length))


def _weighted(rng: random.Random, table: list[tuple[Any, float]]) -> Any:
    return rng.choices([value for value, _ in table], weights=[w for _, w in table])[0]


def tenant_slug(i: int) -> str:
    return f"customer-{i:04d}"


def build(spec: Spec, *, seed: int = SEED, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Generate `spec` into the current (migrated, empty) database; the marker data back."""
    from django.db import transaction
    from django.utils import timezone

    rng = random.Random(seed)
    now = timezone.now().replace(microsecond=0)
    marker: dict[str, Any] = {"built_at": now.isoformat(), "spec": asdict(spec), "counts": {}}
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    state: dict[str, Any] = {}

    def step(name: str) -> Callable[[Callable[[], dict[str, Any]]], None]:
        def register(function: Callable[[], dict[str, Any]]) -> None:
            steps.append((name, function))

        return register

    @step("staff users")
    def _() -> dict[str, Any]:
        state["staff"] = make_staff(spec, rng)
        return {"users": len(state["staff"]) + 1}

    @step("tenants, stacks, domains, secrets")
    def _() -> dict[str, Any]:
        state.update(make_stacks(spec, rng, now))
        return {"tenants": len(state["tenants"]), "stacks": len(state["stacks"])}

    @step("operations and steps")
    def _() -> dict[str, Any]:
        return make_operations(spec, rng, now, state)

    @step("PocketBase outbox")
    def _() -> dict[str, Any]:
        return make_outbox(rng, now, state)

    @step("reconcile runs")
    def _() -> dict[str, Any]:
        return make_reconcile(spec, rng, now, state)

    @step("health results and outages")
    def _() -> dict[str, Any]:
        return make_health(spec, rng, now, state)

    @step("incidents")
    def _() -> dict[str, Any]:
        return make_incidents(spec, rng, now, state)

    @step("checklist runs")
    def _() -> dict[str, Any]:
        return make_checklists(spec, rng, now, state)

    @step("audit events")
    def _() -> dict[str, Any]:
        return make_audit(spec, rng, now, state)

    with historical_timestamps():
        for name, function in steps:
            started = time.monotonic()
            with transaction.atomic():
                counts = function()
            marker["counts"].update(counts)
            log(f"{name}: {time.monotonic() - started:.1f} s {counts}")
    marker["objects"] = state["objects"]
    return marker


@functools.cache
def _password_hash() -> str:
    """Hashed once per process: PBKDF2 is slow on purpose, and tests build several times."""
    from django.contrib.auth.hashers import make_password

    return make_password(BENCH_PASSWORD)


def make_staff(spec: Spec, rng: random.Random) -> list[Any]:
    from django.contrib.auth.models import Group, User

    from cfadmin.roles import ADMIN, OPERATOR, SUPPORT, VIEWER

    User.objects.create_superuser(username=BENCH_USER, password=None, email="")
    User.objects.filter(username=BENCH_USER).update(password=_password_hash())
    roles = [OPERATOR, SUPPORT, VIEWER, ADMIN]
    staff = []
    for i in range(spec.staff):
        role = roles[i % len(roles)]
        user = User(username=f"{role}-{i}", is_staff=True, email=f"{role}-{i}@example.com")
        user.set_unusable_password()
        staff.append(user)
    staff = User.objects.bulk_create(staff)
    groups = {group.name: group for group in Group.objects.all()}
    for i, user in enumerate(staff):
        group = groups.get(roles[i % len(roles)])
        if group is not None:
            user.groups.add(group)
    return staff


def make_stacks(spec: Spec, rng: random.Random, now: datetime) -> dict[str, Any]:
    from stacks.choices import StackStatus
    from stacks.compose import load_manifest
    from stacks.models import Stack, StackDomain, StackSecret
    from tenants.choices import TenantStatus
    from tenants.models import Tenant

    year = timedelta(days=365)
    tenants = _insert(
        Tenant,
        (
            Tenant(
                slug=tenant_slug(i),
                name=f"Customer {i} GmbH",
                contact_email=f"ops@customer{i}.example.com",
                status=TenantStatus.SUSPENDED if i % 37 == 0 else TenantStatus.ACTIVE,
                created_at=now - year + timedelta(hours=i),
                updated_at=now - timedelta(days=i % 90),
            )
            for i in range(1, spec.tenants + 1)
        ),
    )
    templates = [("openclaw-agent", 6), ("telegram-bot", 3), ("base-llm", 1)]
    manifests = {name: load_manifest(name) for name, _ in templates}
    statuses = [
        (StackStatus.RUNNING, 85),
        (StackStatus.STOPPED, 4),
        (StackStatus.ERROR, 3),
        (StackStatus.DELETED, 6),
        (StackStatus.PENDING, 1),
        (StackStatus.DEPLOYING, 1),
    ]
    per_tenant = max(1, spec.stacks // spec.tenants)
    stacks = []
    for i in range(spec.stacks):
        tenant = tenants[i // per_tenant % len(tenants)]
        j = i % per_tenant
        template = _weighted(rng, templates)
        # The first stack is the one with a long history (it must be running).
        status = StackStatus.RUNNING if i == 0 else _weighted(rng, statuses)
        created = tenant.created_at + timedelta(days=j * 3, minutes=rng.randrange(1440))
        deployed = status not in (StackStatus.PENDING,)
        stacks.append(
            Stack(
                tenant=tenant,
                project_name=f"{tenant.slug}-project",
                stack_name=f"{tenant.slug}-main" if j == 0 else f"{tenant.slug}-agent{j}",
                template_name=template,
                # One in ten runs an older template version (the "outdated" filter).
                template_version=manifests[template].version if i % 10 else "0000000000ab",
                status=status,
                status_detail="Coolify reports the service unhealthy"
                if status == StackStatus.ERROR
                else "",
                coolify_project_uuid=_uuid(rng) if deployed else "",
                coolify_service_uuid=_uuid(rng) if deployed else "",
                pocketbase_id=_uuid(rng, 15) if deployed else "",
                created_at=created,
                updated_at=created + timedelta(days=rng.randrange(1, 200)),
                deleted_at=now - timedelta(days=rng.randrange(1, 60))
                if status == StackStatus.DELETED
                else None,
            )
        )
    stacks = _insert(Stack, stacks)
    domains, secrets = [], []
    for stack in stacks:
        manifest = manifests[stack.template_name]
        released = stack.deleted_at if stack.status == StackStatus.DELETED else None
        for k, service in enumerate(manifest.exposed):
            host = stack.stack_name if k == 0 else f"{stack.stack_name}-{service}"
            domains.append(
                StackDomain(
                    stack=stack,
                    service=service,
                    domain=f"{host}.agents.example.com",
                    released_at=released,
                )
            )
        for key in manifest.env_keys[:2]:
            secret = StackSecret(stack=stack, key=key, updated_at=stack.created_at)
            secret.set_value(f"bench-{key.lower()}-{stack.pk:06d}-not-a-real-secret")
            secrets.append(secret)
    _insert(StackDomain, domains)
    _insert(StackSecret, secrets)
    # The representative stack: running, with a domain (a domain-prefix search finds it).
    middle = stacks[len(stacks) // 2 + 1]
    while middle.status != StackStatus.RUNNING or not manifests[middle.template_name].exposed:
        middle = stacks[stacks.index(middle) + 1]
    middle_tenant = tenants[len(tenants) // 2]
    return {
        "tenants": tenants,
        "stacks": stacks,
        "objects": {
            "big_stack": stacks[0].pk,
            "stack": middle.pk,
            "stack_name": middle.stack_name,
            "service_uuid": middle.coolify_service_uuid,
            "domain_prefix": f"{middle.stack_name}.agents",
            "tenant": middle_tenant.pk,
            "tenant_slug": middle_tenant.slug,
            "domains": len(domains),
            "secrets": len(secrets),
        },
    }


STEP_NAMES = {
    "deploy": [
        "render",
        "ensure_project",
        "create_service",
        "set_env",
        "start",
        "wait_healthy",
        "record",
    ],
    "delete": ["stop", "delete_service", "confirm_gone", "delete_record"],
}
DEFAULT_STEPS = ["request", "wait", "record"]


def make_operations(
    spec: Spec, rng: random.Random, now: datetime, state: dict[str, Any]
) -> dict[str, Any]:
    from stacks.choices import OperationKind, OperationStatus, StackStatus, StepOutcome
    from stacks.models import Operation, OperationStep

    stacks, staff = state["stacks"], state["staff"]
    big = stacks[0]
    others = [stack for stack in stacks[1:] if stack.status != StackStatus.PENDING]
    # The rest of the operations spread over the other stacks (a deploy first for each).
    remaining = max(0, spec.operations - spec.big_stack_operations)
    per_stack: dict[int, int] = {stack.pk: 0 for stack in others}
    for i in range(remaining):
        per_stack[others[i % len(others)].pk if i < len(others) else rng.choice(others).pk] += 1
    per_stack[big.pk] = spec.big_stack_operations
    later_kinds = [
        (OperationKind.RESTART, 40),
        (OperationKind.REDEPLOY, 25),
        (OperationKind.STOP, 10),
        (OperationKind.START, 10),
        (OperationKind.ROTATE_SECRETS, 15),
    ]
    outcomes = [
        (OperationStatus.SUCCEEDED, 90),
        (OperationStatus.FAILED, 8),
        (OperationStatus.CANCELLED, 2),
    ]
    operations = []
    for stack in [big, *others]:  # a pending stack has never been deployed: no operations
        count = per_stack[stack.pk]
        span = max(1.0, (now - stack.created_at).total_seconds())
        for k in range(count):
            last = k == count - 1
            if k == 0:
                kind = OperationKind.DEPLOY
            elif last and stack.status == StackStatus.DELETED:
                kind = OperationKind.DELETE
            else:
                kind = _weighted(rng, later_kinds)
            status = _weighted(rng, outcomes)
            if last and stack.status == StackStatus.DEPLOYING:
                status = OperationStatus.RUNNING
            requested = stack.created_at + timedelta(seconds=span * (k + rng.random()) / count)
            requested = min(requested, now - timedelta(minutes=1))
            finished = status not in (OperationStatus.RUNNING, OperationStatus.QUEUED)
            duration = rng.randrange(4_000, 180_000)
            actor = rng.choice(staff)
            operations.append(
                Operation(
                    stack=stack,
                    kind=kind,
                    status=status,
                    requested_by=actor,
                    requested_by_repr=actor.username,
                    parameters={"stack": stack.stack_name, "template": stack.template_name},
                    current_step="" if finished else "wait_healthy",
                    result={"service_uuid": stack.coolify_service_uuid} if finished else {},
                    error="Coolify answered 502 Bad Gateway at start; retry the operation."
                    if status == OperationStatus.FAILED
                    else "",
                    requested_at=requested,
                    enqueued_at=requested,
                    started_at=requested + timedelta(seconds=1),
                    finished_at=requested + timedelta(milliseconds=duration) if finished else None,
                    duration_ms=duration if finished else None,
                    heartbeat_at=requested + timedelta(milliseconds=duration),
                    attempts=1,
                    enqueue_count=0,
                )
            )
    operations = _insert(Operation, operations)
    # Steps for the big stack's operations and every tenth other one (the operation page
    # shows them; the stack page lists operations only).
    steps = []
    for i, operation in enumerate(operations):
        if operation.stack_id != big.pk and i % 10:
            continue
        names = STEP_NAMES.get(operation.kind, DEFAULT_STEPS)
        for position, name in enumerate(names, start=1):
            failed = operation.status == "failed" and position == len(names)
            steps.append(
                OperationStep(
                    operation=operation,
                    position=position,
                    name=name,
                    outcome=StepOutcome.FAILED if failed else StepOutcome.DONE,
                    detail=operation.error if failed else f"{name} done",
                    started_at=operation.requested_at + timedelta(seconds=position),
                    duration_ms=rng.randrange(50, 20_000),
                )
            )
    _insert(OperationStep, steps)
    state["operations"] = operations
    big_ops = [op for op in operations if op.stack_id == big.pk]
    state["objects"]["operation"] = operations[
        len(operations) // 2 - (len(operations) // 2) % 10
    ].pk
    state["objects"]["big_stack_operations"] = len(big_ops)
    return {"operations": len(operations), "operation_steps": len(steps)}


def make_outbox(rng: random.Random, now: datetime, state: dict[str, Any]) -> dict[str, Any]:
    from stacks.choices import OutboxAction, OutboxState
    from stacks.models import PocketBaseOutboxEntry

    entries = []
    for i, stack in enumerate(state["stacks"]):
        if not stack.pocketbase_id:
            continue
        record = {
            "tenant": stack.tenant.slug,
            "stack_name": stack.stack_name,
            "template": stack.template_name,
            "status": stack.status,
            "project_uuid": stack.coolify_project_uuid,
            "service_uuid": stack.coolify_service_uuid,
            "domains": [f"{stack.stack_name}.agents.example.com"],
        }
        states = [OutboxState.SUPERSEDED, OutboxState.DELIVERED]
        if i % 200 == 7:
            states.append(OutboxState.PENDING)
        elif i % 500 == 11:
            states.append(OutboxState.REJECTED)
        for k, entry_state in enumerate(states):
            at = stack.updated_at + timedelta(minutes=k)
            entries.append(
                PocketBaseOutboxEntry(
                    stack=stack,
                    tenant_slug=stack.tenant.slug,
                    stack_name=stack.stack_name,
                    action=OutboxAction.DELETE
                    if stack.status == "deleted" and k == len(states) - 1
                    else OutboxAction.UPSERT,
                    record=record,
                    record_id=stack.pocketbase_id,
                    state=entry_state,
                    created_at=at,
                    next_attempt_at=at,
                    attempts=1 if entry_state != OutboxState.PENDING else 3,
                    last_attempt_at=at,
                    last_error="PocketBase: 400 validation_invalid_value"
                    if entry_state == OutboxState.REJECTED
                    else "",
                    delivered_at=at if entry_state == OutboxState.DELIVERED else None,
                )
            )
    _insert(PocketBaseOutboxEntry, entries)
    return {"outbox_entries": len(entries)}


def make_reconcile(
    spec: Spec, rng: random.Random, now: datetime, state: dict[str, Any]
) -> dict[str, Any]:
    """Reconcile every 15 minutes for a day, with a little drift each; the newest finished run
    is the one after a PocketBase reset: a missing record for nearly every live stack."""
    from stacks.choices import DriftKind, Repair, StackStatus
    from stacks.models import ReconcileRun
    from stacks.reconcile.drift import Drift

    def stack_drift(stack: Any, kind: str, message: str, repairs: list[str]) -> dict[str, Any]:
        return Drift(
            kind,
            stack.tenant.slug,
            stack.stack_name,
            message,
            repairs,
            stack_id=stack.pk,
            service_uuid=stack.coolify_service_uuid,
            record_id=stack.pocketbase_id,
        ).as_dict()

    live = [s for s in state["stacks"] if s.status not in (StackStatus.DELETED, "pending")]
    missing = "PocketBase has no agent_stacks record for this stack."
    runs = []
    for k in range(spec.reconcile_history, 0, -1):
        started = now - timedelta(minutes=15 * k + 5)
        drift = [
            stack_drift(stack, DriftKind.MISSING_RECORD, missing, [Repair.PUSH_RECORD])
            for stack in rng.sample(live, min(3, len(live)))
        ]
        runs.append(
            ReconcileRun(
                started_at=started,
                finished_at=started + timedelta(seconds=20),
                requested_by_repr="schedule",
                stacks_checked=len(live),
                drift=drift,
            )
        )
    big_drift = []
    for i in range(spec.drift_rows):
        stack = live[i % len(live)]
        if i % 400 == 1:
            big_drift.append(
                stack_drift(
                    stack,
                    DriftKind.SERVICE_STATUS,
                    f"cfadmin says {stack.status}, Coolify says exited. Coolify's status can lag "
                    "or be wrong: check the stack's URL first.",
                    [Repair.TAKE_COOLIFY_STATUS],
                )
            )
        elif i % 1000 == 3:
            uuid = _uuid(rng)
            big_drift.append(
                Drift(
                    DriftKind.ORPHAN_SERVICE,
                    stack.tenant.slug,
                    f"lost-{i}",
                    f"Coolify runs service lost-{i} ({uuid}, running:healthy) that cfadmin "
                    "does not know.",
                    [Repair.IMPORT],
                    service_uuid=uuid,
                ).as_dict()
            )
        else:
            big_drift.append(
                stack_drift(stack, DriftKind.MISSING_RECORD, missing, [Repair.PUSH_RECORD])
            )
    started = now - timedelta(minutes=3)
    runs.append(
        ReconcileRun(
            started_at=started,
            finished_at=started + timedelta(seconds=40),
            requested_by_repr="schedule",
            stacks_checked=len(live),
            drift=big_drift,
            note="",
        )
    )
    runs = _insert(ReconcileRun, runs)
    state["objects"]["reconcile_run"] = runs[-1].pk
    return {"reconcile_runs": len(runs), "drift_rows": len(big_drift)}


def health_details(check: str, rng: random.Random, state: dict[str, Any], *, full: bool) -> dict:
    """What each check stores in `details` (ops/health.py), with this dataset's numbers."""
    live = state["health_live"]
    if check == "coolify_api":
        return {"version": "4.0.0-beta.420.6"}
    if check == "active_stacks":
        return {
            "expected_running": len(live),
            "running_in_coolify": len(live) - 2,
            "not_running": [f"{name} (stopped: exited)" for name in live[:2]],
            "unknown_to_cfadmin": [],
        }
    if check == "coolify_servers":
        return {
            "servers": [
                {"name": f"server-{k}", "uuid": f"srv{k:021d}", "reachable": True, "usable": True}
                for k in range(3)
            ]
        }
    if check == "disk_usage":
        return {
            "command": "df -P /",
            "filesystems": [
                {"filesystem": "/dev/sda1", "use_percent": 40 + rng.randrange(30), "mount": "/"}
            ],
        }
    if check == "https_domains" and state.get("https_states"):
        # Per-domain states (ops.models.HttpsDomainState): a result holds a summary only.
        live = len(state["health_domains"])
        return {
            "live": live,
            "probed": min(live, 500),
            "left_for_next_run": 0,
            "never_checked": 0,
            "overdue": 0,
            "ok": live - 3,
            "expiring": 2,
            "failing": 1,
            "not_checked": 0,
            "domains": [{"host": state["health_domains"][0], "error": "TimeoutError"}],
        }
    if check == "https_domains":
        # One dict shared by the rows that carry it: ~9,000 domains each, built once.
        key = "health_https_full" if full else "health_https_short"
        if key in state:
            return state[key]
        domains = state["health_domains"] if full else state["health_domains"][:SHORT_HTTPS_DOMAINS]
        state[key] = {
            "domains": [
                {
                    "host": domain,
                    "address": f"203.0.113.{k % 250 + 1}:443",
                    "not_after": "2027-02-01T12:00:00+00:00",
                    "days_left": 63,
                    "http_status": "HTTP/1.1 200 OK",
                }
                for k, domain in enumerate(domains)
            ]
        }
        return state[key]
    return {}


def make_health(
    spec: Spec, rng: random.Random, now: datetime, state: dict[str, Any]
) -> dict[str, Any]:
    """Every check every 5 minutes for `health_runs` runs (HTTPS too), mostly OK with a few
    warnings and outages (runs of failures, each an Outage row)."""
    from ops.health import CHECKS
    from ops.models import CheckStatus, HealthCheckResult, Outage
    from stacks.models import StackDomain

    running = [s for s in state["stacks"] if s.status == "running"]
    state["health_live"] = [f"{s.tenant.slug}/{s.stack_name}" for s in running]
    state["health_domains"] = list(
        StackDomain.objects.filter(released_at__isnull=True, stack__status="running")
        .order_by("pk")
        .values_list("domain", flat=True)
    )
    # Outages: runs of consecutive failures, spread over the period.
    down_runs: dict[str, set[int]] = {check.name: set() for check in CHECKS}
    outages = []
    for k in range(min(spec.outages, spec.health_runs)):
        check = CHECKS[k % len(CHECKS)]
        start = rng.randrange(1, spec.health_runs)
        length = min(rng.randrange(1, 6), start)
        runs = set(range(start - length + 1, start + 1)) - down_runs[check.name]
        if not runs:
            continue
        down_runs[check.name] |= runs
        outages.append(
            Outage(
                check_name=check.name,
                started_at=now - HEALTH_INTERVAL * max(runs),
                ended_at=now - HEALTH_INTERVAL * (min(runs) - 1),
                failures=len(runs),
                first_message="no answer within 10s",
                last_message="no answer within 10s",
            )
        )
    outages = _insert(Outage, outages)
    state["outages"] = outages

    def results() -> Iterator[Any]:
        for check in CHECKS:
            https = check.name == "https_domains"
            for k in range(spec.health_runs, 0, -1):  # k runs ago
                if k in down_runs[check.name]:
                    status, message = CheckStatus.DOWN, "no answer within 10s"
                elif rng.random() < 0.02:
                    status, message = CheckStatus.WARNING, f"{check.name}: degraded"
                else:
                    status, message = CheckStatus.OK, f"{check.name} OK"
                if https and status == CheckStatus.OK:
                    message = f"{len(state['health_domains'])} domain(s) serve HTTPS"
                yield HealthCheckResult(
                    check_name=check.name,
                    status=status,
                    critical=check.critical,
                    message=message,
                    details=health_details(check.name, rng, state, full=k <= FULL_HTTPS_ROWS),
                    latency_ms=rng.randrange(20, 900) if not https else rng.randrange(2000, 9000),
                    checked_at=now - HEALTH_INTERVAL * (k - 1),
                )

    from ops import models as ops_models

    counts: dict[str, Any] = {"outages": len(outages)}
    state["https_states"] = hasattr(ops_models, "HttpsDomainState")
    if state["https_states"]:
        counts.update(make_https_states(rng, now, state))
    count = 0
    for chunk in _chunks(results(), 50):  # full HTTPS rows are ~1 MB of JSON each
        HealthCheckResult.objects.bulk_create(chunk)
        count += len(chunk)
    counts["health_results"] = count
    if hasattr(ops_models, "rebuild_rollups"):  # daily and hourly rollups, as record() keeps them
        counts["health_rollups"] = ops_models.rebuild_rollups()
    return counts


def make_https_states(rng: random.Random, now: datetime, state: dict[str, Any]) -> dict:
    """Each live domain's HTTPS state and its history of changes: first seen when its stack
    was deployed, a few flapped to failing and back, a few certificates expiring."""
    from ops.models import HttpsDomainChange, HttpsDomainState, HttpsStatus

    states, changes = [], []
    first_seen = now - timedelta(days=30)
    for i, domain in enumerate(state["health_domains"]):
        status = HttpsStatus.OK
        if i % 3000 == 17:
            status = HttpsStatus.FAILING
        elif i % 2000 == 5:
            status = HttpsStatus.EXPIRING
        since = first_seen + timedelta(minutes=i % 1440)
        changes.append(
            HttpsDomainChange(
                domain=domain, status=HttpsStatus.OK, previous_status="", changed_at=since
            )
        )
        if i % 50 == 0:  # a flap: failing for a while, then fine again
            down = since + timedelta(days=rng.randrange(1, 25))
            changes += [
                HttpsDomainChange(
                    domain=domain,
                    status=HttpsStatus.FAILING,
                    previous_status=HttpsStatus.OK,
                    changed_at=down,
                    message="ConnectionRefusedError: [Errno 111] Connection refused",
                ),
                HttpsDomainChange(
                    domain=domain,
                    status=HttpsStatus.OK,
                    previous_status=HttpsStatus.FAILING,
                    changed_at=down + timedelta(minutes=35),
                ),
            ]
            since = down + timedelta(minutes=35)
        if status != HttpsStatus.OK:
            since = now - timedelta(hours=2)
            changes.append(
                HttpsDomainChange(
                    domain=domain,
                    status=status,
                    previous_status=HttpsStatus.OK,
                    changed_at=since,
                    message="certificate expires in 9 days" if status != "failing" else "timeout",
                )
            )
        states.append(
            HttpsDomainState(
                domain=domain,
                status=status,
                since=since,
                last_checked_at=now - timedelta(minutes=i % 60),
                message="" if status == HttpsStatus.OK else "see the latest change",
                not_after=now + timedelta(days=9 if status == HttpsStatus.EXPIRING else 63),
            )
        )
    _insert(HttpsDomainState, states)
    _insert(HttpsDomainChange, changes)
    return {"https_domain_states": len(states), "https_domain_changes": len(changes)}


def make_incidents(
    spec: Spec, rng: random.Random, now: datetime, state: dict[str, Any]
) -> dict[str, Any]:
    from ops.models import (
        EscalationContact,
        Incident,
        IncidentEvent,
        IncidentEventKind,
        IncidentStatus,
        Severity,
    )

    contacts = list(EscalationContact.objects.all())
    stacks, staff = state["stacks"], state["staff"]
    year = 365 * 24 * 3600
    incidents = []
    for i in range(spec.incidents):
        opened = now - timedelta(seconds=year * (spec.incidents - i) / spec.incidents)
        unresolved = i >= spec.incidents - max(3, spec.incidents // 100)
        status = (
            rng.choice([IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED])
            if unresolved
            else IncidentStatus.RESOLVED
        )
        contact = rng.choice(contacts) if contacts else None
        owner = rng.choice(staff)
        incident = Incident(
            title=f"Agent stacks unreachable on server {i % 7} ({i})",
            severity=_weighted(
                rng,
                [(Severity.SEV1, 2), (Severity.SEV2, 8), (Severity.SEV3, 60), (Severity.SEV4, 30)],
            ),
            escalation=contact,
            status=status,
            summary="Customers report 502s from their agents; Coolify shows the containers "
            "restarting.",
            resolution="" if unresolved else "Restarted the Docker daemon on the server.",
            owner=owner,
            opened_by=owner,
            opened_by_repr=owner.username,
            opened_at=opened,
            acknowledged_at=opened + timedelta(minutes=12) if status != "open" else None,
            mitigated_at=opened + timedelta(hours=1) if not unresolved else None,
            resolved_at=opened + timedelta(hours=2) if not unresolved else None,
        )
        incident.set_response_target()
        incidents.append(incident)
    incidents = _insert(Incident, incidents)
    events, stack_links, tenant_links, outage_links = [], [], [], []
    stack_through = Incident.stacks.through
    tenant_through = Incident.tenants.through
    outage_through = Incident.outages.through
    outages = state.get("outages", [])
    for i, incident in enumerate(incidents):
        for k, kind in enumerate(
            [IncidentEventKind.OPENED, IncidentEventKind.NOTE, IncidentEventKind.STATUS]
        ):
            events.append(
                IncidentEvent(
                    incident=incident,
                    kind=kind,
                    message=f"{kind.label}: bench event {k}",
                    actor=incident.owner,
                    actor_repr=incident.opened_by_repr,
                    at=incident.opened_at + timedelta(minutes=10 * k),
                )
            )
        if i % 5 < 3:  # three in five touch stacks (and so their tenants)
            linked = rng.sample(stacks, min(len(stacks), 1 + i % 5))
            stack_links += [stack_through(incident_id=incident.pk, stack_id=s.pk) for s in linked]
            tenant_links += [
                tenant_through(incident_id=incident.pk, tenant_id=t)
                for t in {s.tenant_id for s in linked}
            ]
        if outages and i % 10 == 0:
            outage_links.append(
                outage_through(incident_id=incident.pk, outage_id=outages[i % len(outages)].pk)
            )
    _insert(IncidentEvent, events)
    _insert(stack_through, stack_links)
    _insert(tenant_through, tenant_links)
    _insert(outage_through, outage_links)
    # The incident page to time: one linked to five stacks.
    state["objects"]["incident"] = next(
        (incidents[i].pk for i in range(len(incidents)) if i % 5 == 4), incidents[0].pk
    )
    state["incidents"] = incidents
    return {"incidents": len(incidents), "incident_events": len(events)}


def make_checklists(
    spec: Spec, rng: random.Random, now: datetime, state: dict[str, Any]
) -> dict[str, Any]:
    from ops.models import ChecklistItem, ChecklistRun, ItemState, Procedure, RunStatus

    procedures = list(Procedure.objects.filter(active=True).prefetch_related("steps"))
    stacks, staff, incidents = state["stacks"], state["staff"], state["incidents"]
    year = 365 * 24 * 3600
    runs = []
    for i in range(spec.checklist_runs):
        procedure = procedures[i % len(procedures)]
        stack = rng.choice(stacks) if procedure.needs_stack or i % 3 == 0 else None
        started = now - timedelta(seconds=year * (spec.checklist_runs - i) / spec.checklist_runs)
        is_open = i >= spec.checklist_runs - max(2, spec.checklist_runs // 200)
        actor = rng.choice(staff)
        runs.append(
            ChecklistRun(
                procedure=procedure,
                stack=stack,
                tenant=stack.tenant if stack else None,
                incident=incidents[i % len(incidents)] if procedure.is_urgent else None,
                status=RunStatus.OPEN if is_open else RunStatus.COMPLETED,
                started_by=actor,
                started_by_repr=actor.username,
                started_at=started,
                completed_at=None if is_open else started + timedelta(minutes=25),
                note="",
            )
        )
    runs = _insert(ChecklistRun, runs)
    steps_of = {p.pk: list(p.steps.all()) for p in procedures}

    def items() -> Iterator[Any]:
        for run in runs:
            for step in steps_of[run.procedure_id]:
                settled = run.status == RunStatus.COMPLETED
                state_ = (
                    (ItemState.PASSED if step.probe else ItemState.DONE)
                    if settled
                    else ItemState.PENDING
                )
                host = f"{run.stack.stack_name}.agents.example.com" if run.stack else "-"
                yield ChecklistItem(
                    run=run,
                    step=step,
                    state=state_,
                    note="" if step.probe else "Looked fine.",
                    evidence={
                        "probe": step.probe,
                        "host": host,
                        "http_status": "HTTP/1.1 200 OK",
                        "days_left": 63,
                        "headers": {"server": "traefik", "content-type": "text/html"},
                        "log_tail": ["Starting agent…", "Listening on :3000"] * 5,
                    }
                    if step.probe and settled
                    else {},
                    settled_by=run.started_by if settled and not step.probe else None,
                    settled_by_repr=(run.started_by_repr if not step.probe else "cfadmin")
                    if settled
                    else "",
                    settled_at=run.completed_at if settled else None,
                )

    count = 0
    for chunk in _chunks(items()):
        ChecklistItem.objects.bulk_create(chunk)
        count += len(chunk)
    state["objects"]["checklist_run"] = runs[len(runs) // 2].pk
    return {"checklist_runs": len(runs), "checklist_items": count}


def make_audit(
    spec: Spec, rng: random.Random, now: datetime, state: dict[str, Any]
) -> dict[str, Any]:
    """A year of the trail: operations and their results, admin edits, logins, incident and
    checklist changes, from staff, the CLI and the scheduler."""
    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType

    from cfadmin.models import AuditAction, AuditEvent
    from ops.models import ChecklistRun, Incident
    from stacks.models import Operation, Stack
    from tenants.models import Tenant

    types = {m: ContentType.objects.get_for_model(m) for m in (Stack, Tenant, Operation, Incident)}
    types[User] = ContentType.objects.get_for_model(User)
    types[ChecklistRun] = ContentType.objects.get_for_model(ChecklistRun)
    stacks, staff, operations = state["stacks"], state["staff"], state["operations"]
    stacks_by_pk = {stack.pk: stack for stack in stacks}
    tenants, incidents = state["tenants"], state["incidents"]
    actors = [*((u, u.username) for u in staff), (None, "cli:root"), (None, "system")]
    year = 365 * 24 * 3600

    def events() -> Iterator[Any]:
        for i in range(spec.audit_events):
            at = now - timedelta(seconds=year * (spec.audit_events - i) / spec.audit_events)
            actor, actor_repr = rng.choice(actors)
            roll = rng.random()
            tenant_slug = stack_name = message = ""
            changes: dict[str, Any] = {}
            target_repr = ""
            if roll < 0.40:
                op = operations[rng.randrange(len(operations))]
                stack = stacks_by_pk[op.stack_id]
                action = AuditAction.OPERATION if roll < 0.2 else AuditAction.OPERATION_RESULT
                target, target_type = op, types[Operation]
                tenant_slug, stack_name = stack.tenant.slug, stack.stack_name
                target_repr = f"{op.get_kind_display()} #{op.pk}"
                message = f"{op.kind} {'requested' if roll < 0.2 else op.status}"
                changes = {"parameters": {"stack": stack_name}}
            elif roll < 0.60:
                stack = rng.choice(stacks)
                action = rng.choice([AuditAction.UPDATE, AuditAction.CREATE])
                target, target_type = stack, types[Stack]
                tenant_slug, stack_name = stack.tenant.slug, stack.stack_name
                message = "Changed Project name."
                changes = {"fields": {"project_name": ["old", stack.project_name]}}
            elif roll < 0.65:
                tenant = rng.choice(tenants)
                action = AuditAction.UPDATE
                target, target_type = tenant, types[Tenant]
                tenant_slug, message = tenant.slug, "Changed Notes."
                changes = {"fields": {"notes": ["", "Renewal in March"]}}
            elif roll < 0.80:
                user = rng.choice(staff)
                action = _weighted(
                    rng,
                    [
                        (AuditAction.LOGIN, 60),
                        (AuditAction.LOGOUT, 30),
                        (AuditAction.LOGIN_FAILED, 8),
                        (AuditAction.MFA_FAILED, 2),
                    ],
                )
                target, target_type = user, types[User]
                actor, actor_repr = user, user.username
            elif roll < 0.92:
                incident = rng.choice(incidents)
                action = AuditAction.UPDATE
                target, target_type = incident, types[Incident]
                message = "Incident status changed."
                changes = {"fields": {"status": ["open", "acknowledged"]}}
            else:
                action = AuditAction.UPDATE
                target, target_type = None, types[ChecklistRun]
                message = "Checklist item ticked."
            yield AuditEvent(
                occurred_at=at,
                actor=actor,
                actor_repr=actor_repr,
                action=action,
                target_type=target_type,
                target_id=str(target.pk) if target is not None else str(i),
                target_repr=(
                    target_repr
                    or (
                        f"#{target.pk} {target.title}"
                        if isinstance(target, Incident)
                        else str(target or f"checklist run #{i}")
                    )
                )[:255],
                tenant_slug=tenant_slug,
                stack_name=stack_name,
                message=message,
                changes=changes,
                address=f"10.{i % 7}.{i % 251}.{i % 249 + 1}" if actor is not None else None,
                user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0" if actor else "",
            )

    count = 0
    for chunk in _chunks(events()):
        AuditEvent.objects.bulk_create(chunk)
        count += len(chunk)
    state["objects"]["actor"] = staff[0].username
    state["objects"]["audit_event"] = None  # the admin picks the middle one
    return {"audit_events": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["pg", "sqlite"], default="pg")
    parser.add_argument("--size", choices=sorted(SPECS), default="large")
    args = parser.parse_args()
    marker = open_dataset(args.db, args.size)
    print(json.dumps(marker["counts"], indent=1))


if __name__ == "__main__":
    main()
