"""Auto-incidents (ops.response.auto_incidents): a critical check down N runs in a row opens (or
joins) the Platform Down incident with its outage linked, never a second one while it is open
(also when two health runs record at once, on PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from cfadmin.models import AuditEvent
from ops import health, incidents
from ops.models import (
    CheckStatus,
    EscalationContact,
    Incident,
    IncidentEventKind,
    IncidentStatus,
    Outage,
    Severity,
)
from ops.models.mass_failure import AutoIncident
from ops.response import auto_incidents


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.AUTO_INCIDENT_AFTER_FAILURES = 3


def run(*outcomes: tuple[str, str]) -> None:
    """One health run recording these (check, status) results, all critical."""
    health.record(
        [
            health.CheckOutcome(name, status, f"{name} said {status}", True)
            for name, status in outcomes
        ]
    )


DOWN = CheckStatus.DOWN
OK = CheckStatus.OK


def platform_incidents():
    return Incident.objects.filter(escalation__issue_type="Platform Down")


def automatic_lines(incident: Incident) -> list[str]:
    return list(
        incident.events.filter(kind=IncidentEventKind.AUTOMATIC)
        .order_by("pk")
        .values_list("message", flat=True)
    )


@pytest.mark.django_db
def test_a_critical_check_down_three_runs_in_a_row_opens_platform_down_once():
    run(("coolify_api", DOWN))
    run(("coolify_api", DOWN))
    assert not Incident.objects.exists()
    run(("coolify_api", DOWN))

    incident = platform_incidents().get()
    outage = Outage.objects.get(check_name="coolify_api")
    assert list(incident.outages.all()) == [outage]
    assert incident.severity == Severity.SEV1
    assert incident.opened_by is None and incident.opened_by_repr == "cfadmin"
    assert incident.response_due_at is not None  # Platform Down's response target
    (line,) = automatic_lines(incident)
    assert line.startswith("Opened automatically by cfadmin: the critical health check coolify_api")
    assert "down 3 runs in a row" in line
    assert incident.events.filter(kind=IncidentEventKind.OPENED).exists()
    assert AuditEvent.objects.filter(message=line, actor_repr="cfadmin").exists()

    run(("coolify_api", DOWN))  # still down: joins, nothing new to link
    assert platform_incidents().count() == 1
    assert len(automatic_lines(incident)) == 1


@pytest.mark.django_db
def test_a_second_check_going_down_joins_the_open_incident_with_its_outage():
    for _ in range(3):
        run(("coolify_api", DOWN), ("pocketbase", OK))
    for _ in range(3):
        run(("coolify_api", DOWN), ("pocketbase", DOWN))

    incident = platform_incidents().get()
    assert {o.check_name for o in incident.outages.all()} == {"coolify_api", "pocketbase"}
    lines = automatic_lines(incident)
    assert len(lines) == 2
    assert lines[1].startswith("cfadmin linked the outage of pocketbase")


@pytest.mark.django_db
def test_warnings_and_non_critical_checks_open_nothing():
    for _ in range(4):
        health.record(
            [
                health.CheckOutcome("coolify_api", CheckStatus.WARNING, "slow", True),
                health.CheckOutcome("disk_usage", DOWN, "full", False),
            ]
        )
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_after_the_incident_is_resolved_a_new_outage_opens_a_new_one(support):
    for _ in range(3):
        run(("coolify_api", DOWN))
    first = platform_incidents().get()
    incidents.change_status(first, IncidentStatus.RESOLVED, actor=support, resolution="restarted")
    run(("coolify_api", OK))
    for _ in range(3):
        run(("coolify_api", DOWN))
    assert platform_incidents().count() == 2
    assert AutoIncident.objects.get(key=auto_incidents.PLATFORM_KEY).incident != first


@pytest.mark.django_db
def test_an_open_platform_down_incident_opened_by_a_person_is_joined(support):
    manual = Incident(
        title="Coolify unreachable",
        escalation=EscalationContact.objects.get(issue_type="Platform Down"),
    )
    incidents.prepare_new(manual, actor=support)
    manual.save()
    for _ in range(3):
        run(("coolify_servers", DOWN))
    assert platform_incidents().get() == manual
    assert manual.outages.get().check_name == "coolify_servers"
    assert automatic_lines(manual)[0].startswith("cfadmin linked the outage of coolify_servers")


@pytest.mark.django_db
def test_the_open_auto_incident_key_is_unique(support):
    incident = Incident.objects.create(title="x")
    AutoIncident.objects.create(key=auto_incidents.PLATFORM_KEY, incident=incident)
    with pytest.raises(IntegrityError), transaction.atomic():
        AutoIncident.objects.create(key=auto_incidents.PLATFORM_KEY, incident=incident)


@pytest.mark.django_db(transaction=True)
def test_two_health_runs_at_once_open_one_incident(monkeypatch):
    """Both runs pass the "is one open?" look before either inserts (a barrier holds them in
    open_new): the unique key makes the second insert fail and that run join the first's."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite serialises the writers")
    for _ in range(2):
        run(("coolify_api", DOWN))
    barrier = threading.Barrier(2, timeout=10)
    opened = auto_incidents._open_platform_down

    def open_after_both_looked(outage):
        barrier.wait()
        return opened(outage)

    monkeypatch.setattr(auto_incidents, "_open_platform_down", open_after_both_looked)
    errors: list[BaseException] = []

    def third_failure():
        try:
            Outage.objects.filter(check_name="coolify_api").update(failures=3)
            auto_incidents.after_health_record(
                [
                    type(
                        "Result",
                        (),
                        {"critical": True, "status": DOWN, "check_name": "coolify_api"},
                    )
                ]
            )
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=third_failure) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert platform_incidents().count() == 1
    assert AutoIncident.objects.count() == 1
