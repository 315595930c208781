"""Probes reach only the public internet, unless PROBE_RESOLVE says where a name goes.

A customer's domain is anyone's to point anywhere: one resolving to cfadmin's own machine, a
private network or the cloud metadata address must not become a request from inside. These
tests resolve real names ("localhost") and IP literals with the real resolver; only the mixed
and rebinding answers, which no local resolver gives, come from a stand-in getaddrinfo.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from ops import netprobe, probes
from ops.health import HealthContext, check_https_domains
from ops.models import ChecklistRun, CheckStatus, Procedure
from ops.netprobe import ProbeRefused, Target, non_public_reason, resolve, serves_https


@pytest.fixture
def external(settings):
    settings.PROBE_EXTERNAL = True
    settings.PROBE_RESOLVE = {}
    return settings


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("fe80::1%lo", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
    ],
)
def test_addresses_that_are_not_public_are_named_by_kind(address, reason):
    assert non_public_reason(address) == reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "100.128.0.1", "2606:4700:4700::1111"]
)
def test_public_addresses_pass(address):
    assert non_public_reason(address) is None


def test_a_name_resolving_to_loopback_is_refused(external):
    with pytest.raises(ProbeRefused) as refused:
        resolve("localhost")

    message = str(refused.value)
    assert message.startswith("refused: localhost resolves to ")
    assert "(loopback); probes reach only public addresses" in message
    assert "127.0.0.1" in message or "::1" in message


def test_the_metadata_address_is_refused(external):
    with pytest.raises(ProbeRefused) as refused:
        resolve("169.254.169.254")

    assert str(refused.value) == (
        "refused: 169.254.169.254 resolves to 169.254.169.254 (link-local); "
        "probes reach only public addresses"
    )


def test_an_explicit_probe_resolve_mapping_to_loopback_is_allowed(settings):
    """PROBE_RESOLVE is the operator's own choice (staging, the tests' local TLS server)."""
    settings.PROBE_EXTERNAL = True
    settings.PROBE_RESOLVE = {"demo.customer123.com": "127.0.0.1:8443", "localhost": "127.0.0.1"}

    assert resolve("demo.customer123.com") == Target("demo.customer123.com", "127.0.0.1", 8443)
    assert resolve("localhost") == Target("localhost", "127.0.0.1", 443)
    with pytest.raises(ProbeRefused):
        resolve("127.0.0.1")  # the mapping is for the names it lists, not for loopback


def test_the_mapping_works_with_external_probes_off(settings):
    settings.PROBE_EXTERNAL = False
    settings.PROBE_RESOLVE = {"demo.customer123.com": "127.0.0.1:8443"}

    assert resolve("demo.customer123.com").address == "127.0.0.1"


def fake_dns(monkeypatch, *answers: list[str]) -> list[str]:
    """getaddrinfo answering each lookup with the next list of addresses; returns the names
    looked up."""
    looked_up: list[str] = []
    queue = list(answers)

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple]:
        looked_up.append(host)
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port),
            )
            for a in addresses
        ]

    monkeypatch.setattr(netprobe.socket, "getaddrinfo", getaddrinfo)
    return looked_up


def test_one_private_address_among_public_ones_is_enough_to_refuse(external, monkeypatch):
    fake_dns(monkeypatch, ["93.184.216.34", "10.0.0.7"])

    with pytest.raises(ProbeRefused, match=r"resolves to 10\.0\.0\.7 \(private\)"):
        resolve("mixed.example.com")


def test_the_probe_connects_to_the_address_it_checked(external, monkeypatch):
    """DNS rebinding: the second answer would be loopback; the probe never asks twice."""
    looked_up = fake_dns(monkeypatch, ["93.184.216.34"], ["127.0.0.1"])
    connected: list[tuple[str, int]] = []

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        connected.append(address)
        raise ConnectionRefusedError("not really connecting")

    monkeypatch.setattr(netprobe.socket, "create_connection", create_connection)

    ok, facts = serves_https("rebind.example.com", timeout=1)

    assert not ok and "ConnectionRefusedError" in facts["error"]
    assert looked_up == ["rebind.example.com"]
    assert connected == [("93.184.216.34", 443)]


def test_the_https_health_check_reports_a_refused_domain_as_failing(external):
    context = HealthContext(
        timeout=1.0,
        running_stacks={},
        known_services=set(),
        domains=["localhost", "169.254.169.254"],
    )

    status, message, details = check_https_domains(context)

    assert status == CheckStatus.DOWN
    assert message == "HTTPS failing: localhost, 169.254.169.254"
    errors = [d["error"] for d in details["domains"]]
    assert all(e.endswith("; probes reach only public addresses") for e in errors)
    assert "(link-local)" in errors[1]


@pytest.mark.django_db
def test_checklist_probes_refuse_without_connecting(external, make_stack, monkeypatch):
    connected: list[Any] = []
    monkeypatch.setattr(
        netprobe.socket, "create_connection", lambda *a, **k: connected.append(a) or 1 / 0
    )
    stack = make_stack(domains={"webui": "localhost"})
    run = ChecklistRun.objects.create(
        procedure=Procedure.objects.first(), stack=stack, started_by_repr="test"
    )

    resolves, resolve_evidence = probes.domain_resolves(run)
    serves, serve_evidence = probes.https_serves(run)
    gone, gone_evidence = probes.domain_not_served(run)

    assert resolves is False and "refused: localhost" in resolve_evidence["localhost"]
    assert serves is False and "refused: localhost" in serve_evidence["error"]
    assert gone is None and "refused: localhost" in gone_evidence["note"]  # a person looks
    assert connected == []
