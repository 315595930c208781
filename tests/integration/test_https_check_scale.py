"""The HTTPS check at scale: 2,000 live domains against TLS servers on loopback (each a separate
process, serving every name under one wildcard certificate), some domains failing (nothing
listening, a certificate from another CA, a server that never answers).

Each run ends within its budget (HEALTHCHECK_TIMEOUT, plus a generous margin for a shared
machine), stores only a summary in its result, and writes a domain's history only when its
status changes: a run that sees nothing new writes no history. Nothing leaves loopback
(PROBE_RESOLVE maps every name to 127.0.0.1).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from ops.health import record, run_checks
from ops.models import CheckStatus, HealthCheckResult, HttpsDomainChange, HttpsDomainState
from ops.models import HttpsStatus as Https
from stacks.choices import StackStatus
from stacks.models import StackDomain
from tests.integration.test_health_checks import BlackHole, free_port, make_pki

pytestmark = pytest.mark.integration

DOMAINS = 2000
REFUSED, WRONG_CA, HUNG = 20, 10, 5  # failing domains of each kind
TIMEOUT = 6.0  # HEALTHCHECK_TIMEOUT: the check's budget per run
MARGIN = 4.0  # generous: the machine is shared; the bound itself is what matters

# A small asyncio HTTPS server: many handshakes at once without sharing the test's GIL.
SERVER = r"""
import asyncio, ssl, sys

async def handle(reader, writer):
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()

async def main():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


class ServerProcess:
    def __init__(self, script: Path, cert: str, key: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script), cert, key], stdout=subprocess.PIPE, text=True
        )
        self.address = f"127.0.0.1:{int(self.process.stdout.readline())}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def name(i: int) -> str:
    return f"d{i:04d}.scale.test"


@pytest.fixture
def fleet(tmp_path, settings, make_stack):
    """2,000 live domains: most served well, REFUSED + WRONG_CA + HUNG failing."""
    script = tmp_path / "tls_server.py"
    script.write_text(SERVER)
    good = make_pki(tmp_path / "good", "*.scale.test", days=90)
    other = make_pki(tmp_path / "other", "*.scale.test", days=90)  # a CA nobody trusts
    servers = [ServerProcess(script, good["cert"], good["key"]) for _ in range(2)]
    servers.append(ServerProcess(script, other["cert"], other["key"]))
    hole = BlackHole()
    closed = f"127.0.0.1:{free_port()}"
    hung_address = hole.url.removeprefix("http://")
    resolve = {}
    for i in range(DOMAINS):
        if i < REFUSED:
            resolve[name(i)] = closed
        elif i < REFUSED + WRONG_CA:
            resolve[name(i)] = servers[2].address
        elif i < REFUSED + WRONG_CA + HUNG:
            resolve[name(i)] = hung_address
        else:
            resolve[name(i)] = servers[i % 2].address
    settings.HEALTHCHECK_HTTPS = True
    settings.HEALTHCHECK_TIMEOUT = TIMEOUT
    settings.PROBE_EXTERNAL = False
    settings.PROBE_RESOLVE = resolve
    settings.PROBE_CA_FILE = good["ca"]
    stacks = [
        make_stack(
            f"tenant-{n}",
            status=StackStatus.RUNNING,
            coolify_service_uuid=f"svc{n:022d}",
        )
        for n in range(20)
    ]
    StackDomain.objects.bulk_create(
        StackDomain(stack=stacks[i % 20], service=f"web{i}", domain=name(i)) for i in range(DOMAINS)
    )
    yield resolve
    for server in servers:
        server.stop()
    hole.close()


def run_once() -> tuple[HealthCheckResult, float]:
    started = time.monotonic()
    [outcome] = run_checks(["https_domains"])
    elapsed = time.monotonic() - started
    [result] = record([outcome])
    return result, elapsed


def run_until_all_probed(limit: int = 12) -> list[HealthCheckResult]:
    """Runs until no due domain is left; each within its budget."""
    results = []
    for _ in range(limit):
        result, elapsed = run_once()
        results.append(result)
        assert "no answer" not in result.message, result.message
        assert elapsed < TIMEOUT + MARGIN, elapsed
        assert not [t for t in threading.enumerate() if t.name.startswith("https-probe")]
        if result.details["left_for_next_run"] == 0:
            return results
    raise AssertionError(f"still domains left after {limit} runs: {results[-1].details}")


FAILING = REFUSED + WRONG_CA + HUNG


@pytest.mark.django_db(transaction=True)
def test_two_thousand_domains_within_the_budget_storing_only_changes(fleet, settings):
    first = run_until_all_probed()

    states = dict(HttpsDomainState.objects.values_list("domain", "status"))
    assert len(states) == DOMAINS
    assert sorted(d for d, s in states.items() if s == Https.FAILING) == [
        name(i) for i in range(FAILING)
    ]
    assert set(states.values()) == {Https.OK, Https.FAILING}
    last = first[-1]
    assert last.status == CheckStatus.DOWN  # domains fail: not because time ran out
    assert last.details["failing"] == FAILING and last.details["ok"] == DOMAINS - FAILING
    assert last.message.startswith("HTTPS failing: d0000.scale.test, d0001.scale.test")
    assert last.message.endswith(f"and {FAILING - 20} more")
    assert len(last.details["domains"]) == 20  # the first few failing, not every domain
    assert all(len(json.dumps(r.details)) < 20_000 for r in first)  # a summary, not 2,000 rows
    assert "ConnectionRefusedError" in last.details["domains"][0]["error"]
    messages = dict(HttpsDomainState.objects.values_list("domain", "message"))
    assert "CERTIFICATE_VERIFY_FAILED" in messages[name(REFUSED)]
    assert "TimeoutError" in messages[name(REFUSED + WRONG_CA)]
    assert messages[name(FAILING)].startswith("HTTP/1.1 200")
    # One change per domain: its first status.
    assert HttpsDomainChange.objects.count() == DOMAINS

    # The next run: only the failing domains are due (healthy ones wait an hour); nothing
    # changed, so no history is written.
    again, elapsed = run_once()
    assert elapsed < TIMEOUT + MARGIN
    assert again.details["probed"] == FAILING, again.details
    assert again.status == CheckStatus.DOWN
    assert HttpsDomainChange.objects.count() == DOMAINS

    # An hour later every domain is due again: probed once more, nothing changed, no history.
    before = timezone.now()
    HttpsDomainState.objects.update(last_checked_at=before - timedelta(hours=2))
    run_until_all_probed()
    assert HttpsDomainChange.objects.count() == DOMAINS
    assert not HttpsDomainState.objects.filter(last_checked_at__lt=before).exists()

    # Ten healthy domains stop answering: ten changes, nothing else.
    broken = [name(i) for i in range(1000, 1010)]
    settings.PROBE_RESOLVE = {**fleet, **dict.fromkeys(broken, fleet[name(0)])}
    HttpsDomainState.objects.filter(domain__in=broken).update(
        last_checked_at=timezone.now() - timedelta(hours=2)
    )
    changed, _ = run_once()
    new = HttpsDomainChange.objects.filter(previous_status=Https.OK)
    assert sorted(new.values_list("domain", flat=True)) == broken
    assert all(c.status == Https.FAILING for c in new)
    assert HttpsDomainChange.objects.count() == DOMAINS + len(broken)
    assert changed.details["failing"] == FAILING + len(broken)
