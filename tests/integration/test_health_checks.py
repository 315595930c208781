"""The runbook's daily health check as code: every check against the Coolify simulator and a
real PocketBase, healthy, unhealthy and timing out; checks run concurrently; results and
outages are stored; `manage.py healthcheck` prints JSON and exits non-zero when a critical
check is down; the schedules are installed once.

Nothing here contacts a host outside loopback: HTTPS probes go to a TLS server this module
starts on 127.0.0.1, with a CA and certificate it makes (PROBE_RESOLVE + PROBE_CA_FILE).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.db import connection
from django_q.models import Schedule

from ops.health import CHECK_NAMES, CheckOutcome, record, run_checks
from ops.models import (
    CheckStatus,
    HealthCheckResult,
    HttpsDomainState,
    HttpsStatus,
    Outage,
    uptime,
)
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.clients.coolify import CoolifyClient
from stacks.coolify_simulator.api import SERVER_UUID
from stacks.coolify_simulator.server import Fault
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import PB_EMAIL, PB_PASSWORD, SIM_TOKEN, no_sleep

pytestmark = pytest.mark.integration

BASE_DIR = Path(__file__).resolve().parents[2]
DOMAIN = "demo.customer123.com"
HEALTHCHECK_SCHEDULE = "cfadmin.health_checks"
RECOVERY_SCHEDULE = "cfadmin.recover_stale_operations"
RECONCILE_SCHEDULE = "cfadmin.reconcile"
DEFAULT_CHECKS = {
    "coolify_api",
    "pocketbase",
    "active_stacks",
    "coolify_servers",
    "disk_usage",
    "server_resources",
    "container_resources",
    "volume_sizes",
    "pocketbase_backup",
}


def simulated_server_command(coolify_url: str = "") -> str:
    """SERVER_COMMAND for the simulated server's stand-in shell (stacks.coolify_simulator.
    server_shell: free, df, docker stats and du answered from the simulator's state)."""
    where = f"--url {coolify_url} --token {SIM_TOKEN} " if coolify_url else ""
    return (
        f"env PYTHONPATH={shlex.quote(str(BASE_DIR))} {shlex.quote(sys.executable)} -m "
        f"stacks.coolify_simulator.server_shell {where}{{command}}"
    )


def ensure_a_recent_backup(pocketbase) -> None:
    """The pocketbase_backup check is OK only with a backup (the session's PocketBase keeps it)."""
    if not pocketbase.list_backups():
        pocketbase.create_backup()


# --- loopback helpers: ports, a TLS server with its own CA, a fake `df` ----------------------


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BlackHole:
    """Accepts TCP connections (the kernel does) and never answers: a hung service."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_pki(directory: Path, host: str, *, days: int = 90) -> dict[str, str]:
    """A test CA and a leaf certificate for `host` valid `days` more days; PEM file paths."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cfadmin test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {
        "ca": directory / "ca.pem",
        "cert": directory / "leaf.pem",
        "key": directory / "leaf.key",
    }
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {name: str(path) for name, path in paths.items()}


class TLSServer:
    """An HTTPS server on 127.0.0.1 that answers 200 to anything; records the Host headers."""

    def __init__(self, cert: str, key: str) -> None:
        self.hosts: list[str] = []
        server = self

        class Hello(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.hosts.append(self.headers.get("Host", ""))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(b"ok")

            do_HEAD = do_GET

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> TLSServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


DF_HEADER = "Filesystem     1024-blocks      Used Available Capacity Mounted on"


def write_df_script(
    directory: Path,
    percents: dict[str, int] | None = None,
    *,
    exit_code: int = 0,
    stderr: str = "",
    sleep: float = 0,
) -> str:
    """A script printing fake `df -P` output; returns the command for HEALTHCHECK_DISK_COMMAND."""
    percents = {"/": 40} if percents is None else percents
    lines = [DF_HEADER]
    for i, (mount, percent) in enumerate(percents.items()):
        used = percent * 1000
        lines.append(f"/dev/sda{i + 1}  100000  {used}  {100000 - used}  {percent}% {mount}")
    script = directory / f"fake-df-{len(list(directory.glob('fake-df-*')))}.sh"
    body = ["#!/bin/sh"]
    if sleep:
        body.append(f"sleep {sleep}")
    body += [f"echo '{line}'" for line in lines]
    if stderr:
        body.append(f"echo '{stderr}' >&2")
    body.append(f"exit {exit_code}")
    script.write_text("\n".join(body) + "\n")
    script.chmod(0o755)
    return str(script)


@pytest.fixture
def fake_df(tmp_path):
    directory = tmp_path / "df"
    directory.mkdir()

    def make(*args, **kwargs) -> str:
        return write_df_script(directory, *args, **kwargs)

    return make


@pytest.fixture
def healthy(remote, settings, fake_df):
    """Settings for a healthy platform: simulator, real PocketBase, disk at 40 %, no HTTPS."""
    settings.HEALTHCHECK_TIMEOUT = 3.0
    settings.HEALTHCHECK_DISK_COMMAND = fake_df({"/": 40})
    settings.HEALTHCHECK_HTTPS = False
    settings.PROBE_EXTERNAL = False
    settings.PROBE_RESOLVE = {}
    settings.OPERATION_SUCCESS_HOOKS = []  # the validation checklists have their own tests
    settings.SERVER_COMMAND = simulated_server_command(settings.COOLIFY_URL)
    ensure_a_recent_backup(remote.pocketbase)
    return remote


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole
    hole.close()


def by_name(outcomes: list[CheckOutcome]) -> dict[str, CheckOutcome]:
    return {outcome.name: outcome for outcome in outcomes}


def one(name: str, **kwargs) -> CheckOutcome:
    [outcome] = run_checks([name], **kwargs)
    assert outcome.name == name
    return outcome


def deploy(make_stack, remote, actor, tenant="customer-123", stack_name=None, domain=DOMAIN):
    stack = make_stack(
        tenant,
        stack_name,
        domains={"webui": domain} if domain else None,
        secrets={"ANTHROPIC_API_KEY": "sk-test-health-0123456789abcdefghij"},
    )
    operation = request_operation(stack, OperationKind.DEPLOY, actor=actor)
    assert run_operation(operation.pk, remote=remote, sleep=no_sleep)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    stack.refresh_from_db()
    assert stack.status == StackStatus.RUNNING
    return stack


def create_foreign_service(coolify: CoolifyClient, name: str = "someone-elses-app") -> str:
    """A service in Coolify that cfadmin did not make (e.g. created by hand in Coolify's UI)."""
    project = coolify.create_project("hand-made-project")
    server = coolify.list_servers()[0]["uuid"]
    created = coolify.create_service(
        project_uuid=project,
        server_uuid=server,
        environment_name="production",
        name=name,
        description="made in Coolify's UI",
        compose="services:\n  app:\n    image: nginx:1.27\n",
        urls=[],
    )
    return created["uuid"]


# --- healthy ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the checks' threads write (budget)
def test_every_check_is_healthy_against_the_simulator_and_real_pocketbase(healthy):
    outcomes = by_name(run_checks())

    assert set(outcomes) == DEFAULT_CHECKS  # https_domains is off by default
    assert {name: o.status for name, o in outcomes.items()} == dict.fromkeys(
        DEFAULT_CHECKS, CheckStatus.OK
    ), {name: o.message for name, o in outcomes.items()}
    assert outcomes["coolify_api"].critical and outcomes["pocketbase"].critical
    assert outcomes["coolify_servers"].critical
    assert not outcomes["active_stacks"].critical and not outcomes["disk_usage"].critical
    assert outcomes["coolify_api"].message.startswith("Coolify API OK (version 4.")
    assert outcomes["pocketbase"].message == "PocketBase OK (healthy, service login works)"
    assert outcomes["coolify_servers"].details["servers"] == [
        {
            "name": "localhost",
            "uuid": SERVER_UUID,
            "reachable": True,
            "usable": True,
        }
    ]
    assert outcomes["disk_usage"].message == "Disk / at 40%"
    assert all(0 <= o.latency_ms < 3000 for o in outcomes.values())


@pytest.mark.django_db(transaction=True)
def test_a_deployed_stack_counts_as_active_and_every_check_stays_healthy(
    healthy, make_stack, operator
):
    stack = deploy(make_stack, healthy, operator)

    outcomes = by_name(run_checks())

    assert all(o.status == CheckStatus.OK for o in outcomes.values()), {
        n: o.message for n, o in outcomes.items()
    }
    active = outcomes["active_stacks"]
    assert active.details == {
        "expected_running": 1,
        "running_in_coolify": 1,
        "not_running": [],
        "unknown_to_cfadmin": [],
    }
    assert active.message == "Active stacks: 1 running in Coolify, 1 expected by cfadmin"
    assert stack.coolify_service_uuid


# --- unhealthy -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pocketbase_on_a_closed_port_is_down_at_once(healthy, settings):
    settings.POCKETBASE_URL = f"http://127.0.0.1:{free_port()}"

    started = time.monotonic()
    outcome = one("pocketbase")

    assert outcome.status == CheckStatus.DOWN and outcome.critical
    assert "cannot connect" in outcome.message and "PocketBase" in outcome.message
    assert time.monotonic() - started < 2.0


@pytest.mark.django_db
def test_a_wrong_pocketbase_password_is_down(healthy, settings):
    settings.POCKETBASE_PASSWORD = "not-the-password"

    outcome = one("pocketbase")

    assert outcome.status == CheckStatus.DOWN
    assert "superuser login failed" in outcome.message
    assert "not-the-password" not in outcome.message


@pytest.mark.django_db
def test_a_rejected_fixed_pocketbase_token_is_down(healthy, settings):
    """An installation may give POCKETBASE_TOKEN instead of a login. BUG: the check only calls
    the unauthenticated /api/health and PocketBaseClient.login(), which with a fixed token
    just sets it, so a revoked token still reads "service login works"."""
    settings.POCKETBASE_TOKEN = "revoked-pocketbase-token"
    settings.POCKETBASE_EMAIL = ""
    settings.POCKETBASE_PASSWORD = ""

    outcome = one("pocketbase")

    assert outcome.status == CheckStatus.DOWN, outcome.message
    assert "revoked-pocketbase-token" not in outcome.message


@pytest.mark.django_db
def test_a_rejected_coolify_token_takes_every_coolify_check_down(healthy, settings):
    settings.COOLIFY_TOKEN = "revoked-token"

    outcomes = by_name(run_checks())

    for name in ("coolify_api", "active_stacks", "coolify_servers"):
        assert outcomes[name].status == CheckStatus.DOWN, outcomes[name].message
        assert "HTTP 401" in outcomes[name].message, outcomes[name].message
        assert "revoked-token" not in outcomes[name].message
    assert outcomes["pocketbase"].status == CheckStatus.OK
    assert outcomes["disk_usage"].status == CheckStatus.OK


@pytest.mark.django_db(transaction=True)  # the checks' threads write (budget)
def test_an_unusable_server_is_reported(healthy, coolify_sim):
    [server] = coolify_sim.api.servers.values()
    server["settings"]["is_usable"] = False

    outcome = one("coolify_servers")

    assert outcome.status == CheckStatus.DOWN
    assert outcome.message == "No reachable, usable Coolify server"
    assert outcome.details["servers"][0]["usable"] is False

    # With a second, healthy server Coolify still works: a warning naming the bad one.
    coolify_sim.api.servers["sim1server1second0000000"] = {
        **server,
        "uuid": "sim1server1second0000000",
        "name": "second",
        "settings": {**server["settings"], "is_usable": True},
    }

    outcome = one("coolify_servers")

    assert outcome.status == CheckStatus.WARNING
    assert outcome.message == "Servers not reachable/usable: localhost"


@pytest.mark.django_db
def test_an_unreachable_server_is_reported(healthy, coolify_sim):
    [server] = coolify_sim.api.servers.values()
    server["settings"]["is_reachable"] = False

    outcome = one("coolify_servers")

    assert outcome.status == CheckStatus.DOWN
    assert outcome.details["servers"][0]["reachable"] is False


@pytest.mark.django_db
def test_a_running_stack_missing_in_coolify_is_a_warning_naming_it(healthy, make_stack):
    make_stack(
        "customer-123",
        "customer-123-main",
        status=StackStatus.RUNNING,
        coolify_service_uuid="gone0service0uuid0000000",
    )

    outcome = one("active_stacks")

    assert outcome.status == CheckStatus.WARNING
    assert not outcome.critical
    assert outcome.details["not_running"] == ["customer-123/customer-123-main (missing)"]
    assert "not running: customer-123/customer-123-main (missing)" in outcome.message
    assert outcome.details["expected_running"] == 1
    assert outcome.details["running_in_coolify"] == 0


@pytest.mark.django_db
def test_a_service_unknown_to_cfadmin_is_listed(healthy):
    uuid = create_foreign_service(healthy.coolify)

    outcome = one("active_stacks")

    assert outcome.status == CheckStatus.WARNING
    assert outcome.details["unknown_to_cfadmin"] == [f"someone-elses-app ({uuid})"]
    assert f"unknown to cfadmin: someone-elses-app ({uuid})" in outcome.message
    assert outcome.details["not_running"] == []


@pytest.mark.django_db(transaction=True)
def test_a_stopped_service_of_a_running_stack_is_named_with_its_status(
    healthy, make_stack, operator
):
    stack = deploy(make_stack, healthy, operator)
    healthy.coolify.stop_service(stack.coolify_service_uuid)
    # The stop only queues a job; it sets `exited` when it runs.
    deadline = time.monotonic() + 5
    while (status := healthy.coolify.get_service(stack.coolify_service_uuid)["status"]) != (
        "exited"
    ):
        assert time.monotonic() < deadline, f"Coolify still says {status!r}"
        time.sleep(0.01)

    outcome = one("active_stacks")

    assert outcome.status == CheckStatus.WARNING
    # Named with what its status means, then what Coolify said.
    assert outcome.details["not_running"] == ["customer-123/customer-123-main (stopped: exited)"]
    assert outcome.details["running_in_coolify"] == 0


@pytest.mark.parametrize(
    ("percents", "status", "message"),
    [
        ({"/": 79}, CheckStatus.OK, "Disk / at 79%"),
        ({"/": 85}, CheckStatus.WARNING, "Disk / at 85%"),
        ({"/": 95}, CheckStatus.DOWN, "Disk / at 95%"),
        ({"/": 50, "/var/lib/docker": 91}, CheckStatus.DOWN, "Disk /var/lib/docker at 91%"),
    ],
)
@pytest.mark.django_db
def test_disk_usage_thresholds(settings, fake_df, percents, status, message):
    settings.HEALTHCHECK_DISK_COMMAND = fake_df(percents)
    settings.HEALTHCHECK_DISK_WARN_PERCENT = 80
    settings.HEALTHCHECK_DISK_DOWN_PERCENT = 90

    outcome = one("disk_usage", timeout=3)

    assert (outcome.status, outcome.message) == (status, message)
    assert not outcome.critical
    assert [row["mount"] for row in outcome.details["filesystems"]] == list(percents)
    assert outcome.details["command"] == settings.HEALTHCHECK_DISK_COMMAND


@pytest.mark.django_db
def test_a_failing_disk_command_is_down_with_its_error(settings, fake_df):
    settings.HEALTHCHECK_DISK_COMMAND = fake_df(
        {}, exit_code=1, stderr="ssh: connect to host coolify port 22: Connection refused"
    )

    outcome = one("disk_usage", timeout=3)

    assert outcome.status == CheckStatus.DOWN
    assert "failed (exit 1)" in outcome.message
    assert "Connection refused" in outcome.message


@pytest.mark.django_db
def test_a_missing_disk_command_is_down(settings, tmp_path):
    settings.HEALTHCHECK_DISK_COMMAND = str(tmp_path / "no-such-df")

    outcome = one("disk_usage", timeout=3)

    assert outcome.status == CheckStatus.DOWN
    assert "No such file" in outcome.message or "not found" in outcome.message


# --- timeouts --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_coolify_that_does_not_answer_is_down_within_the_timeout(healthy, settings, coolify_sim):
    settings.HEALTHCHECK_TIMEOUT = 1.0
    coolify_sim.add_fault(Fault(r"/api/v1/version", "timeout", times=None, delay=4.0))

    started = time.monotonic()
    outcome = one("coolify_api")
    elapsed = time.monotonic() - started

    assert outcome.status == CheckStatus.DOWN and outcome.critical
    assert "no answer" in outcome.message
    assert elapsed < 1.0 + 0.9, elapsed  # the per-call timeout, not the 4 s the fault holds
    assert outcome.latency_ms < 1900


@pytest.mark.django_db
def test_pocketbase_that_hangs_is_down_within_the_timeout(healthy, settings, black_hole):
    settings.HEALTHCHECK_TIMEOUT = 1.0
    settings.POCKETBASE_URL = black_hole.url

    started = time.monotonic()
    outcome = one("pocketbase")
    elapsed = time.monotonic() - started

    assert outcome.status == CheckStatus.DOWN
    assert "no answer" in outcome.message
    assert elapsed < 1.9, elapsed


@pytest.mark.django_db
def test_a_disk_command_that_hangs_is_down_within_the_timeout(settings, tmp_path):
    script = tmp_path / "hang.sh"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    settings.HEALTHCHECK_DISK_COMMAND = str(script)

    started = time.monotonic()
    outcome = one("disk_usage", timeout=1.0)
    elapsed = time.monotonic() - started

    assert outcome.status == CheckStatus.DOWN
    assert outcome.message == "no answer within 1s"
    assert elapsed < 1.9, elapsed


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the checks' threads write (budget)
def test_checks_run_concurrently_the_run_takes_about_the_slowest_check(
    healthy, settings, coolify_sim, fake_df
):
    settings.HEALTHCHECK_TIMEOUT = 5.0
    settings.HEALTHCHECK_DISK_COMMAND = fake_df({"/": 40}, sleep=1)
    coolify_sim.add_fault(Fault(r"/api/v1/.*", "slow", times=None, delay=1.0))

    started = time.monotonic()
    outcomes = by_name(run_checks())
    elapsed = time.monotonic() - started

    assert all(o.status == CheckStatus.OK for o in outcomes.values()), {
        n: o.message for n, o in outcomes.items()
    }
    slow = ("coolify_api", "active_stacks", "coolify_servers", "disk_usage")
    assert all(outcomes[name].latency_ms >= 950 for name in slow), {
        n: o.latency_ms for n, o in outcomes.items()
    }
    total = sum(o.latency_ms for o in outcomes.values()) / 1000
    assert total >= 3.8  # what running them one after the other would take
    slowest = max(o.latency_ms for o in outcomes.values()) / 1000
    assert slowest <= elapsed < slowest + 0.8, (elapsed, slowest, total)


@pytest.mark.django_db(transaction=True)  # the checks' threads write (budget)
def test_one_hung_check_does_not_delay_the_others(healthy, settings, coolify_sim):
    settings.HEALTHCHECK_TIMEOUT = 1.0
    coolify_sim.add_fault(Fault(r"/api/v1/servers", "timeout", times=None, delay=4.0))

    outcomes = by_name(run_checks())

    assert outcomes["coolify_servers"].status == CheckStatus.DOWN
    for name in ("coolify_api", "pocketbase", "active_stacks", "disk_usage"):
        assert outcomes[name].status == CheckStatus.OK, outcomes[name].message
        assert outcomes[name].latency_ms < 900, (name, outcomes[name].latency_ms)


# --- HTTPS of live domains -------------------------------------------------------------------


@pytest.fixture
def https_stack(make_stack, settings):
    settings.HEALTHCHECK_HTTPS = True
    settings.HEALTHCHECK_TIMEOUT = 2.0
    settings.HTTPS_CERT_WARN_DAYS = 14
    settings.PROBE_EXTERNAL = False
    return make_stack(
        "customer-123",
        "customer-123-main",
        status=StackStatus.RUNNING,
        coolify_service_uuid="svc0customer0123000000000",
        domains={"webui": DOMAIN},
    )


def serve_tls(tmp_path, settings, *, days: int) -> TLSServer:
    pki = make_pki(tmp_path / f"pki-{days}", DOMAIN, days=days)
    server = TLSServer(pki["cert"], pki["key"]).start()
    settings.PROBE_RESOLVE = {DOMAIN: server.address}
    settings.PROBE_CA_FILE = pki["ca"]
    return server


@pytest.mark.django_db
def test_https_of_a_live_domain_is_ok_with_days_left(https_stack, settings, tmp_path):
    server = serve_tls(tmp_path, settings, days=90)
    try:
        outcome = one("https_domains")
    finally:
        server.stop()

    assert outcome.status == CheckStatus.OK, outcome.details
    assert outcome.message == "1 domain(s) serve HTTPS"
    # The result keeps counts and the failing or expiring domains; each domain's facts are
    # its state (stored by record()).
    assert outcome.details["domains"] == [] and outcome.details["ok"] == 1
    facts = outcome.observations[DOMAIN].facts
    assert facts["host"] == DOMAIN
    assert facts["address"] == server.address
    assert facts["days_left"] in (88, 89, 90)
    assert facts["http_status"].startswith("HTTP/1.") and " 200" in facts["http_status"]
    assert server.hosts == [DOMAIN]  # SNI and Host: the probe asked for the customer's domain
    record([outcome])
    state = HttpsDomainState.objects.get(domain=DOMAIN)
    assert (state.status, state.message) == (HttpsStatus.OK, facts["http_status"])
    assert state.not_after.isoformat() == facts["not_after"]


@pytest.mark.django_db
def test_https_is_not_checked_unless_enabled(https_stack, settings):
    settings.HEALTHCHECK_HTTPS = False

    assert "https_domains" not in {o.name for o in run_checks(["https_domains", "disk_usage"])}


@pytest.mark.django_db
def test_a_certificate_expiring_soon_is_a_warning(https_stack, settings, tmp_path):
    server = serve_tls(tmp_path, settings, days=5)
    try:
        outcome = one("https_domains")
    finally:
        server.stop()

    assert outcome.status == CheckStatus.WARNING, outcome.details
    days = outcome.details["domains"][0]["days_left"]
    assert days in (4, 5)
    assert outcome.message == f"Certificates expiring: {DOMAIN} ({days} days)"


@pytest.mark.django_db
def test_https_with_no_server_is_down(https_stack, settings):
    settings.PROBE_RESOLVE = {DOMAIN: f"127.0.0.1:{free_port()}"}

    outcome = one("https_domains")

    assert outcome.status == CheckStatus.DOWN
    assert outcome.message == f"HTTPS failing: {DOMAIN}"
    assert "ConnectionRefusedError" in outcome.details["domains"][0]["error"]


@pytest.mark.django_db
def test_https_with_a_certificate_from_another_ca_is_down(https_stack, settings, tmp_path):
    server = serve_tls(tmp_path, settings, days=90)
    settings.PROBE_CA_FILE = make_pki(tmp_path / "other", DOMAIN)["ca"]
    try:
        outcome = one("https_domains")
    finally:
        server.stop()

    assert outcome.status == CheckStatus.DOWN
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.details["domains"][0]["error"]


# --- results and outages ---------------------------------------------------------------------


@pytest.mark.django_db
def test_fail_fail_ok_is_one_outage_with_two_failures_then_closed(healthy, settings):
    real_url = settings.POCKETBASE_URL
    settings.POCKETBASE_URL = f"http://127.0.0.1:{free_port()}"

    record(run_checks(["pocketbase"]))
    [outage] = Outage.objects.open()
    assert (outage.check_name, outage.failures) == ("pocketbase", 1)
    first_message = outage.first_message

    record(run_checks(["pocketbase"]))
    settings.POCKETBASE_URL = real_url
    record(run_checks(["pocketbase"]))

    [outage] = Outage.objects.all()
    assert outage.check_name == "pocketbase"
    assert outage.failures == 2
    assert outage.ended_at is not None and outage.ended_at >= outage.started_at
    assert outage.first_message == first_message and "cannot connect" in first_message
    assert "cannot connect" in outage.last_message
    assert not Outage.objects.open().exists()
    results = list(HealthCheckResult.objects.filter(check_name="pocketbase").order_by("id"))
    assert [r.status for r in results] == ["down", "down", "ok"]
    assert all(r.critical for r in results)
    assert uptime("pocketbase", outage.started_at) == pytest.approx(1 / 3)


@pytest.mark.django_db
def test_a_new_failure_after_recovery_opens_a_new_outage(settings, fake_df):
    settings.HEALTHCHECK_DISK_COMMAND = fake_df({"/": 97})
    record(run_checks(["disk_usage"], timeout=3))
    settings.HEALTHCHECK_DISK_COMMAND = fake_df({"/": 30})
    record(run_checks(["disk_usage"], timeout=3))
    settings.HEALTHCHECK_DISK_COMMAND = fake_df({"/": 98})
    record(run_checks(["disk_usage"], timeout=3))

    outages = list(Outage.objects.order_by("started_at", "id"))
    assert len(outages) == 2
    assert outages[0].ended_at is not None and outages[0].failures == 1
    assert outages[1].ended_at is None and outages[1].last_message == "Disk / at 98%"


@pytest.mark.django_db
def test_the_dashboard_shows_results_and_a_readable_outage_duration(
    healthy, settings, client, support
):
    real_url = settings.POCKETBASE_URL
    settings.POCKETBASE_URL = f"http://127.0.0.1:{free_port()}"
    record(run_checks())
    record(run_checks())
    settings.POCKETBASE_URL = real_url
    record(run_checks())
    client.force_login(support)

    page = client.get("/admin/ops/healthcheckresult/dashboard/").content.decode()

    for name in DEFAULT_CHECKS:
        assert f'data-check="{name}"' in page
    outages = page[page.index('id="cf-outages"') : page.index('id="cf-contacts"')]
    assert "pocketbase" in outages
    # BUG (UX): the template prints the raw timedelta, e.g. "0:00:00.127938".
    assert not re.search(r"\d:\d\d:\d\d\.\d{6}", outages), outages


# --- manage.py healthcheck -------------------------------------------------------------------


def assert_report_shape(report: dict) -> None:
    # A failed run says so the way every JSON command does: an `error` beside the report.
    extra = set() if report["ok"] else {"error"}
    assert set(report) == {"ok", "checked_at", "critical_down", "checks"} | extra
    if not report["ok"]:
        assert set(report["error"]) == {"code", "message"}
        assert report["error"]["code"] == "critical_checks_down"
    datetime.fromisoformat(report["checked_at"])
    for check in report["checks"]:
        assert set(check) == {"name", "status", "critical", "message", "latency_ms", "details"}
        assert check["status"] in CheckStatus.values
        assert isinstance(check["latency_ms"], int)


@pytest.mark.django_db
def test_healthcheck_command_prints_json_and_records(healthy):
    out = io.StringIO()

    call_command("healthcheck", stdout=out)

    report = json.loads(out.getvalue())
    assert_report_shape(report)
    assert report["ok"] is True and report["critical_down"] == []
    assert {c["name"]: c["status"] for c in report["checks"]} == dict.fromkeys(DEFAULT_CHECKS, "ok")
    assert HealthCheckResult.objects.count() == len(DEFAULT_CHECKS)
    assert not Outage.objects.exists()


@pytest.mark.django_db
def test_healthcheck_command_runs_only_the_named_checks(healthy):
    out = io.StringIO()

    call_command("healthcheck", "pocketbase", "disk_usage", stdout=out)

    report = json.loads(out.getvalue())
    assert sorted(c["name"] for c in report["checks"]) == ["disk_usage", "pocketbase"]
    assert set(HealthCheckResult.objects.values_list("check_name", flat=True)) == {
        "disk_usage",
        "pocketbase",
    }


@pytest.mark.django_db
def test_healthcheck_command_fails_when_a_critical_check_is_down(healthy, settings):
    settings.POCKETBASE_URL = f"http://127.0.0.1:{free_port()}"
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError, match=r"critical checks down: pocketbase$"):
        call_command("healthcheck", stdout=out, stderr=err)

    report = json.loads(out.getvalue())  # one document: the report, with its error
    assert_report_shape(report)
    assert report["ok"] is False and report["critical_down"] == ["pocketbase"]
    assert report["error"]["message"] == "critical checks down: pocketbase"
    assert err.getvalue() == ""
    assert Outage.objects.open().get().check_name == "pocketbase"


@pytest.mark.django_db
def test_healthcheck_lists_every_wrong_check_name_in_one_json_error(settings):
    settings.HEALTHCHECK_HTTPS = False
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError):
        call_command("healthcheck", "pocketbse", "https_domains", "nope", stdout=out, stderr=err)

    output = json.loads(out.getvalue())
    assert output["ok"] is False and set(output) == {"ok", "error"}
    error = output["error"]
    assert error["code"] == "validation_failed" and error["field"] == "checks"
    assert [(f["field"], f["code"]) for f in error["fields"]] == [
        ("checks", "unknown_check"),
        ("checks", "unknown_check"),
        ("checks", "check_disabled"),
    ]
    assert "'nope'" in error["message"] and "'pocketbse'" in error["message"]
    assert "HEALTHCHECK_HTTPS=true" in error["message"]
    assert err.getvalue() == ""
    assert not HealthCheckResult.objects.exists()  # nothing ran

    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("healthcheck", "nope", "--verbose", stdout=io.StringIO(), stderr=err)
    assert err.getvalue().startswith("error [unknown_check]: unknown check 'nope'")


@pytest.mark.django_db
def test_a_non_critical_check_down_does_not_fail_the_command(healthy, settings, fake_df):
    settings.HEALTHCHECK_DISK_COMMAND = fake_df({"/": 99})
    out = io.StringIO()

    call_command("healthcheck", stdout=out)

    report = json.loads(out.getvalue())
    assert report["ok"] is True
    assert {c["name"]: c["status"] for c in report["checks"]}["disk_usage"] == "down"


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{user}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def manage_healthcheck(
    env_overrides: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess, float]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "Q_SYNC": "false",
        "HEALTHCHECK_HTTPS": "false",
        "PROBE_EXTERNAL": "false",
        **env_overrides,
    }
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "healthcheck", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed, time.monotonic() - started


@pytest.fixture
def process_env(coolify_sim, pocketbase_server, pocketbase, fake_df):
    ensure_a_recent_backup(pocketbase)
    return {
        "COOLIFY_URL": coolify_sim.url,
        "COOLIFY_TOKEN": SIM_TOKEN,
        "POCKETBASE_URL": pocketbase_server.url,
        "POCKETBASE_EMAIL": PB_EMAIL,
        "POCKETBASE_PASSWORD": PB_PASSWORD,
        "HEALTHCHECK_TIMEOUT": "2",
        "HEALTHCHECK_DISK_COMMAND": fake_df({"/": 40}),
        "SERVER_COMMAND": simulated_server_command(),
    }


@pytest.mark.django_db(transaction=True)
def test_manage_py_healthcheck_prints_all_ok_and_exits_zero(process_env):
    completed, _ = manage_healthcheck(process_env)

    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert_report_shape(report)
    assert report["ok"] is True
    assert {c["name"]: c["status"] for c in report["checks"]} == dict.fromkeys(
        DEFAULT_CHECKS, "ok"
    ), report
    assert HealthCheckResult.objects.count() == len(DEFAULT_CHECKS)  # stored by the process


@pytest.mark.django_db(transaction=True)
def test_manage_py_healthcheck_with_pocketbase_stopped_exits_non_zero_quickly(process_env):
    process_env["POCKETBASE_URL"] = f"http://127.0.0.1:{free_port()}"

    completed, elapsed = manage_healthcheck(process_env)

    assert completed.returncode != 0
    # Said once, in the JSON: not again as a CommandError line on stderr.
    assert "critical checks down" not in completed.stderr
    report = json.loads(completed.stdout)
    assert report["error"]["message"] == "critical checks down: pocketbase"
    statuses = {c["name"]: c for c in report["checks"]}
    assert statuses["pocketbase"]["status"] == "down"
    assert statuses["pocketbase"]["latency_ms"] < 2000
    assert statuses["coolify_api"]["status"] == "ok"
    assert elapsed < 20, elapsed  # start-up plus well under the 2 s timeout

    verbose, _ = manage_healthcheck(process_env, "--verbose")
    assert verbose.returncode != 0
    assert "error [critical_checks_down]: critical checks down: pocketbase" in verbose.stderr
    assert json.loads(verbose.stdout)["critical_down"] == ["pocketbase"]


@pytest.mark.django_db(transaction=True)
def test_manage_py_healthcheck_with_pocketbase_hung_exits_within_the_timeout(
    process_env, black_hole
):
    # A baseline: the same run with PocketBase refusing at once (start-up, no waiting).
    _, baseline = manage_healthcheck(
        process_env | {"POCKETBASE_URL": f"http://127.0.0.1:{free_port()}"}
    )
    process_env["POCKETBASE_URL"] = black_hole.url

    completed, elapsed = manage_healthcheck(process_env)

    assert completed.returncode != 0
    pocketbase = {c["name"]: c for c in json.loads(completed.stdout)["checks"]}["pocketbase"]
    assert pocketbase["status"] == "down" and "no answer" in pocketbase["message"]
    assert pocketbase["latency_ms"] < 2000 + 500
    # The process ends within the configured timeout of a run that does not wait at all.
    assert elapsed < baseline + 2.0 + 1.5, (elapsed, baseline)


# --- the schedules ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_schedules_exist_once_and_seeding_again_keeps_one_of_each(settings):
    names = [HEALTHCHECK_SCHEDULE, RECOVERY_SCHEDULE, RECONCILE_SCHEDULE]

    def counts() -> dict[str, int]:
        return {name: Schedule.objects.filter(name=name).count() for name in names}

    assert counts() == dict.fromkeys(names, 1)
    health = Schedule.objects.get(name=HEALTHCHECK_SCHEDULE)
    assert health.func == "ops.tasks.run_health_checks_task"
    assert (health.schedule_type, health.repeats) == (Schedule.MINUTES, -1)
    recovery = Schedule.objects.get(name=RECOVERY_SCHEDULE)
    assert recovery.func == "stacks.tasks.recover_stale_operations_task"
    reconcile = Schedule.objects.get(name=RECONCILE_SCHEDULE)
    assert (reconcile.func, reconcile.minutes) == ("stacks.tasks.reconcile_task", 15)

    importlib.import_module("ops.migrations.0003_seed_runbook").seed(django_apps, None)
    call_command("install_schedules", stdout=io.StringIO())
    call_command("install_schedules", stdout=io.StringIO())

    assert counts() == dict.fromkeys(names, 1)


@pytest.mark.django_db
def test_the_health_check_schedule_follows_the_interval_setting(settings):
    """HEALTHCHECK_INTERVAL_MINUTES is a documented setting; the schedule should use it."""
    settings.HEALTHCHECK_INTERVAL_MINUTES = 15

    call_command("install_schedules", stdout=io.StringIO())

    assert Schedule.objects.get(name=HEALTHCHECK_SCHEDULE).minutes == 15


@pytest.mark.django_db
def test_install_schedules_follows_the_reconcile_interval_setting(settings):
    settings.RECONCILE_INTERVAL_MINUTES = 60
    call_command("install_schedules", stdout=io.StringIO())
    assert Schedule.objects.get(name=RECONCILE_SCHEDULE).minutes == 60
    assert Schedule.objects.filter(name=RECONCILE_SCHEDULE).count() == 1


def test_every_check_has_a_name_the_command_accepts():
    assert set(CHECK_NAMES) == DEFAULT_CHECKS | {"https_domains"}
