"""Mass-failure triage (ops.response.mass_failure*): detection from the active_stacks check,
the pattern, one incident (a second detection joins it), the runbook's stop order and the
gradual restart in waves that advance only after the previous one is healthy."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from cfadmin.models import AuditEvent
from ops.models import CheckStatus, HealthCheckResult, Incident, IncidentEventKind
from ops.models.evidence import EvidenceKind
from ops.models.mass_failure import MassFailure, RestartWave, StackDownSighting, WaveStatus
from ops.response import auto_incidents, mass_failure, mass_failure_detect, mass_failure_waves
from ops.response.mass_failure_order import memory_bytes, stop_order, template_memory
from stacks.choices import Containment, OperationKind, OperationStatus, StackStatus
from stacks.models import Operation

# Five stacks over three templates and two tenants (acme has three).
FLEET = [
    ("acme", "chat", "openclaw-agent"),
    ("acme", "llm", "base-llm"),
    ("acme", "bot", "telegram-bot"),
    ("globex", "llm", "base-llm"),
    ("globex", "chat", "openclaw-agent"),
]


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.MASS_FAILURE_STACKS = 5
    settings.MASS_FAILURE_WINDOW_MINUTES = 10


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    calls: list[tuple] = []
    monkeypatch.setattr(
        "cfadmin.jobs.enqueue", lambda func, *args, **kw: calls.append((func, *args))
    )
    monkeypatch.setattr(
        "stacks.services.operations.enqueue", lambda func, *args, **kw: calls.append((func, *args))
    )
    return calls


@pytest.fixture
def servers(monkeypatch) -> dict[str, str]:
    """Coolify's answer: service uuid → server name (ServersController resources_by_server)."""
    found: dict[str, str] = {}
    monkeypatch.setattr(mass_failure_detect, "service_servers", lambda uuids: dict(found))
    return found


@pytest.fixture
def fleet(make_stack, servers):
    stacks = []
    for index, (tenant, name, template) in enumerate(FLEET):
        stack = make_stack(
            tenant,
            f"{tenant}-{name}",
            template_name=template,
            status=StackStatus.RUNNING,
            coolify_service_uuid=f"svc{index}",
        )
        servers[stack.coolify_service_uuid] = "edge-1" if index < 4 else "edge-2"
        stacks.append(stack)
    return stacks


def active_stacks(*stacks, status=CheckStatus.WARNING) -> HealthCheckResult:
    """An active_stacks result as ops.health.check_active_stacks stores it."""
    return HealthCheckResult.objects.create(
        check_name="active_stacks",
        status=status,
        message="Active stacks: …",
        details={
            "expected_running": 10,
            "running_in_coolify": 10 - len(stacks),
            "not_running": sorted(f"{s} (Exited: exited)" for s in stacks),
            "unknown_to_cfadmin": [],
        },
    )


def mass_incidents():
    return Incident.objects.filter(title__startswith=auto_incidents.MASS_FAILURE_TITLE)


def triage_lines(incident):
    return list(
        incident.events.filter(kind=IncidentEventKind.TRIAGE).values_list("message", flat=True)
    )


# --- the order -------------------------------------------------------------------------------


def test_memory_limits_are_read_from_the_manifests():
    assert memory_bytes("8g") == 8 * 1024**3
    assert memory_bytes("512m") == 512 * 1024**2
    assert memory_bytes("nonsense") == 0
    # base-llm: ollama 8g + open-webui 2g; openclaw-agent 2g; telegram-bot 1g.
    assert template_memory("base-llm") == 10 * 1024**3
    assert template_memory("base-llm") > template_memory("openclaw-agent")
    assert template_memory("openclaw-agent") > template_memory("telegram-bot")


@pytest.mark.django_db
def test_stop_order_puts_base_llm_first_then_by_memory_limit(fleet):
    ordered = [(s.template_name, str(s)) for s in stop_order(reversed(fleet))]
    assert ordered == [
        ("base-llm", "acme/acme-llm"),
        ("base-llm", "globex/globex-llm"),
        ("openclaw-agent", "acme/acme-chat"),
        ("openclaw-agent", "globex/globex-chat"),
        ("telegram-bot", "acme/acme-bot"),
    ]


# --- detection -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_five_stacks_down_open_one_incident_with_the_pattern(fleet):
    auto_incidents.after_health_record([active_stacks(*fleet)])

    incident = mass_incidents().get()
    assert incident.opened_by is None and incident.opened_by_repr == "cfadmin"
    assert incident.escalation.issue_type == "Platform Down"
    assert set(incident.stacks.all()) == set(fleet)
    assert {t.slug for t in incident.tenants.all()} == {"acme", "globex"}
    mass = MassFailure.objects.get(incident=incident)
    assert set(mass.stacks.all()) == set(fleet)
    groups = {
        key: [(g["value"], g["count"]) for g in mass.pattern["groups"][key]]
        for key in ("template", "tenant", "server")
    }
    assert groups["template"] == [("base-llm", 2), ("openclaw-agent", 2), ("telegram-bot", 1)]
    assert groups["tenant"] == [("acme", 3), ("globex", 2)]
    assert groups["server"] == [("edge-1", 4), ("edge-2", 1)]
    assert [g["count"] for g in mass.pattern["groups"]["time"]] == [5]
    automatic = incident.events.get(kind=IncidentEventKind.AUTOMATIC)
    assert automatic.actor is None and automatic.actor_repr == "cfadmin"
    assert "5 stacks left running within 10 minutes" in automatic.message
    assert AuditEvent.objects.filter(message__startswith="Opened automatically").count() == 1
    # The servers' latest measured resources are kept as evidence of the moment.
    [kept] = incident.evidence.filter(kind=EvidenceKind.SERVER_RESOURCES)
    assert set(json.loads(kept.content)) == {
        "server_resources",
        "container_resources",
        "volume_sizes",
    }
    assert kept.sha256 == hashlib.sha256(kept.content.encode()).hexdigest()


@pytest.mark.django_db
def test_a_later_run_and_a_second_wave_of_failures_join_the_open_incident(fleet, make_stack):
    auto_incidents.after_health_record([active_stacks(*fleet)])
    auto_incidents.after_health_record([active_stacks(*fleet)])  # the same stacks still down
    incident = mass_incidents().get()
    assert incident.events.filter(kind=IncidentEventKind.AUTOMATIC).count() == 1

    more = [
        make_stack(
            "initech", f"initech-s{i}", status=StackStatus.RUNNING, template_name="telegram-bot"
        )
        for i in range(2)
    ]
    auto_incidents.after_health_record([active_stacks(*fleet, *more)])

    assert mass_incidents().get() == incident
    assert set(incident.mass_failure.stacks.all()) == {*fleet, *more}
    incident.mass_failure.refresh_from_db()
    assert incident.mass_failure.pattern["total"] == 7
    joined = incident.events.filter(kind=IncidentEventKind.AUTOMATIC).order_by("pk").last()
    assert joined.message.startswith("cfadmin linked 2 more stacks")
    assert "initech/initech-s0" in joined.message


@pytest.mark.django_db
def test_fewer_than_the_threshold_or_spread_over_time_open_nothing(fleet):
    auto_incidents.after_health_record([active_stacks(*fleet[:4])])
    assert not mass_incidents().exists()
    # The first four went down long ago: with the fifth now, only one is within the window.
    StackDownSighting.objects.update(first_seen_at=timezone.now() - timedelta(minutes=30))
    auto_incidents.after_health_record([active_stacks(*fleet)])
    assert not mass_incidents().exists()


@pytest.mark.django_db
def test_stacks_stopped_by_a_person_or_isolated_do_not_count(fleet):
    Operation.objects.create(
        stack=fleet[0],
        kind=OperationKind.STOP,
        status=OperationStatus.RUNNING,
        requested_by_repr="operator",
    )
    fleet[1].containment = Containment.ISOLATED
    fleet[1].save()
    auto_incidents.after_health_record([active_stacks(*fleet)])
    assert not mass_incidents().exists()
    assert set(StackDownSighting.objects.values_list("stack_id", flat=True)) == {
        s.pk for s in fleet[2:]
    }


@pytest.mark.django_db
def test_a_stack_running_again_is_forgotten_and_a_run_without_the_check_changes_nothing(fleet):
    auto_incidents.after_health_record([active_stacks(*fleet[:3])])
    auto_incidents.after_health_record([])  # a run of other checks only
    assert StackDownSighting.objects.count() == 3
    auto_incidents.after_health_record([active_stacks(fleet[0])])
    assert list(StackDownSighting.objects.values_list("stack_id", flat=True)) == [fleet[0].pk]


# --- stop and restart ------------------------------------------------------------------------


@pytest.fixture
def mass_incident(fleet):
    auto_incidents.after_health_record([active_stacks(*fleet)])
    return mass_incidents().get()


@pytest.mark.django_db
def test_an_operator_stops_the_stacks_in_order_from_the_incident_page(
    client, rf, operator, support, mass_incident, queued
):
    url = reverse("admin:ops_incident_work", args=[mass_incident.pk, "mass_failure_stop"])
    client.force_login(support)
    assert client.post(url, {}).status_code == 403
    assert not Operation.objects.exists()

    assert mass_failure.forms(mass_incident, support) == ()
    assert mass_failure.forms(mass_incident, operator) == (mass_failure.STOP_FORM,)
    html = render_panel(mass_incident, rf.get("/"))
    assert 'id="cf-mass-pattern"' in html and "edge-1 (4)" in html
    rows = re.findall(r'id="cf-mass-row-(\d+)"', html)
    assert rows[0] == str(mass_incident.stacks.get(stack_name="acme-llm").pk)

    client.force_login(operator)

    assert client.post(url, {"count": "3"}).status_code == 302
    stopped = [str(op.stack) for op in Operation.objects.order_by("pk")]
    assert stopped == ["acme/acme-llm", "globex/globex-llm", "acme/acme-chat"]
    assert all(op.kind == OperationKind.STOP for op in Operation.objects.all())
    assert Operation.objects.first().parameters["incident_id"] == mass_incident.pk
    (line,) = triage_lines(mass_incident)
    assert line.startswith("Emergency stop, highest resource limits first: acme/acme-llm (base-llm")
    assert AuditEvent.objects.filter(message__startswith="Triage: Emergency stop").exists()


def render_panel(incident, request) -> str:
    """The Triage panel as the incident page includes it (panels.html)."""
    panel = mass_failure.FEATURE.panel(incident, request)
    return render_to_string(panel.template, {"panel": panel.context, "incident": incident})


def finish(wave: RestartWave, status=OperationStatus.SUCCEEDED, stack_status=StackStatus.RUNNING):
    for op in wave.operations.all():
        Operation.objects.filter(pk=op.pk).update(
            status=status, error="boom" if status == OperationStatus.FAILED else ""
        )
        op.stack.__class__.objects.filter(pk=op.stack_id).update(status=stack_status)


@pytest.mark.django_db
def test_waves_start_only_after_the_previous_is_healthy_and_halt_on_failure(
    rf, operator, mass_incident, queued
):
    mass_incident.stacks.update(status=StackStatus.STOPPED)
    waves = mass_failure_waves.plan_restart(mass_incident, actor=operator, wave_size=2)
    assert [w.stacks.count() for w in waves] == [2, 2, 1]
    assert (mass_failure_waves.ADVANCE_TASK, mass_incident.mass_failure.pk) in queued
    # Lightest first: the telegram bot and the agents before the base-llm stacks.
    assert [str(s) for s in waves[0].stacks.order_by("stack_name")] == [
        "acme/acme-bot",
        "globex/globex-chat",
    ]
    assert {str(s) for s in waves[2].stacks.all()} == {"acme/acme-llm"}

    mass_failure_waves.advance_all_task()
    w1, w2, w3 = RestartWave.objects.order_by("number")
    assert (w1.status, w2.status, w3.status) == ("running", "pending", "pending")
    assert [op.kind for op in w1.operations.all()] == [OperationKind.START] * 2

    mass_failure_waves.advance_all_task()  # its operations still queued: wave 2 waits
    assert not w2.operations.exists()
    finish(w1)
    mass_failure_waves.advance_all_task()
    w1.refresh_from_db(), w2.refresh_from_db()
    assert (w1.status, w2.status) == (WaveStatus.SUCCEEDED, WaveStatus.RUNNING)
    assert w2.operations.count() == 2

    finish(w2, status=OperationStatus.FAILED, stack_status=StackStatus.ERROR)
    mass_failure_waves.advance_all_task()
    w2.refresh_from_db(), w3.refresh_from_db()
    assert (w2.status, w3.status) == (WaveStatus.FAILED, WaveStatus.HALTED)
    assert not w3.operations.exists()
    lines = triage_lines(mass_incident)
    assert any(line.startswith("Restart wave 1 is healthy") for line in lines)
    assert any("Restart wave 2 failed" in line and "halted" in line for line in lines)
    assert "boom" in RestartWave.objects.get(status=WaveStatus.FAILED).message
    html = render_panel(mass_incident, rf.get("/"))
    assert "restart halted" in html
    assert re.search(r'id="cf-mass-wave-1">.*?Healthy', html, re.S)
    assert re.search(r'id="cf-mass-wave-3">.*?Not started \(restart halted\)', html, re.S)


@pytest.mark.django_db
def test_a_restart_needs_a_sane_wave_size_and_only_one_at_a_time(operator, mass_incident, queued):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="nothing to restart"):
        mass_failure_waves.plan_restart(mass_incident, actor=operator, wave_size=2)
    mass_incident.stacks.update(status=StackStatus.STOPPED)
    with pytest.raises(ValidationError):
        mass_failure_waves.plan_restart(mass_incident, actor=operator, wave_size=0)
    mass_failure_waves.plan_restart(mass_incident, actor=operator, wave_size=5)
    with pytest.raises(ValidationError, match="under way"):
        mass_failure_waves.plan_restart(mass_incident, actor=operator, wave_size=5)


@pytest.mark.django_db
def test_the_incident_cannot_be_resolved_while_a_restart_is_under_way(
    operator, mass_incident, queued
):
    from django.core.exceptions import ValidationError

    from ops import incidents

    mass_incident.stacks.update(status=StackStatus.STOPPED)
    mass_failure_waves.plan_restart(mass_incident, actor=operator, wave_size=5)
    with pytest.raises(ValidationError, match="restart is under way"):
        incidents.change_status(mass_incident, "resolved", actor=operator, resolution="fixed")
    RestartWave.objects.update(status=WaveStatus.SUCCEEDED)
    incidents.change_status(mass_incident, "resolved", actor=operator, resolution="fixed")
    assert mass_incident.is_resolved


@pytest.mark.django_db
def test_a_wave_whose_operations_succeeded_but_stacks_do_not_run_is_not_healthy(
    operator, mass_incident, queued
):
    mass_incident.stacks.update(status=StackStatus.STOPPED)
    mass_failure_waves.plan_restart(mass_incident, actor=operator, wave_size=5)
    mass_failure_waves.advance_all_task()
    wave = RestartWave.objects.get()
    Operation.objects.update(status=OperationStatus.SUCCEEDED)
    status, why = mass_failure_waves.wave_health(wave)
    assert status == WaveStatus.FAILED and why.startswith("started but not running")
    mass_incident.stacks.update(status=StackStatus.RUNNING)
    assert mass_failure_waves.wave_health(wave) == (WaveStatus.SUCCEEDED, "")


@pytest.mark.django_db
def test_the_incident_page_shows_the_triage_panel_and_forms(client, operator, mass_incident):
    client.force_login(operator)
    page = client.get(reverse("admin:ops_incident_change", args=[mass_incident.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="cf-mass-failure"' in html and "edge-1 (4)" in html
    assert "cf-incident-triage-stop-form" in html
    assert "cf-incident-triage-restart-form" not in html  # nothing stopped yet
