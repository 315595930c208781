"""Rotating a leaked value everywhere (ops.response.leaks*, stacks.services.secrets.stacks_holding):
the search by value, the rows and their paced batches, the timeline, the resolve rule, the
two-step page and its permissions, and that the values appear nowhere in clear."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from cfadmin import encryption
from cfadmin.models import AuditEvent
from ops import incidents
from ops.models import IncidentEvent, IncidentEventKind, IncidentStatus
from ops.models.leaks import LeakRotation, LeakState
from ops.response import leaks, leaks_jobs, leaks_rotation
from stacks.choices import OperationKind, OperationStatus, StackStatus
from stacks.models import Operation
from stacks.services import secrets as stack_secrets
from tests.unit.incident_helpers import make_incident

pytestmark = pytest.mark.django_db

EXPOSED = "sk-canary-EXPOSED-" + "Zq8Wv7Xu6Yt5" * 2
NEW = "sk-canary-NEWVALUE-" + "Lm3Kn4Jo5Ip6" * 2
OTHER = "sk-not-leaked-" + "Aa1Bb2Cc3Dd4" * 2


def database_text() -> str:
    """Every row of every table as text, plus the sessions and django-q task rows decoded."""
    parts: list[str] = []
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {quote(table)}")
            parts.extend(repr(row) for row in cursor.fetchall())
    parts.extend(repr(session.get_decoded()) for session in Session.objects.all())
    parts.extend(repr(task.task) for task in OrmQ.objects.all())
    return "\n".join(parts)


def assert_nowhere(*texts: str) -> None:
    for text in texts:
        for value in (EXPOSED, NEW):
            assert value not in text


@pytest.fixture
def five_stacks(make_stack):
    """Three stacks of two tenants hold the exposed value under different keys; two don't (one
    of them is deleted, and holds it: a deleted stack is not rotated)."""
    holders = [
        make_stack("acme", "acme-main", status=StackStatus.RUNNING,
                   secrets={"ANTHROPIC_API_KEY": EXPOSED, "TELEGRAM_BOT_TOKEN": OTHER}),
        make_stack("acme", "acme-extra", status=StackStatus.STOPPED,
                   secrets={"TELEGRAM_BOT_TOKEN": EXPOSED}),
        make_stack("globex", "globex-main", status=StackStatus.RUNNING,
                   secrets={"ANTHROPIC_API_KEY": EXPOSED}),
    ]  # fmt: skip
    others = [
        make_stack("globex", "globex-other", status=StackStatus.RUNNING,
                   secrets={"ANTHROPIC_API_KEY": OTHER}),
        make_stack("initech", "initech-old", status=StackStatus.DELETED,
                   secrets={"ANTHROPIC_API_KEY": EXPOSED}),
    ]  # fmt: skip
    return holders, others


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    calls: list[tuple] = []
    monkeypatch.setattr(
        "cfadmin.jobs.enqueue", lambda func, *args, **kw: calls.append((func, *args))
    )
    return calls


def rotation_lines(incident) -> list[str]:
    return list(
        IncidentEvent.objects.filter(incident=incident, kind=IncidentEventKind.ROTATION)
        .order_by("id")
        .values_list("message", flat=True)
    )


def test_the_scan_finds_a_value_in_clear_in_a_row_or_a_session(client, operator):
    """The canary search itself can fail: a value in a row or a session is found."""
    incident = make_incident(operator)
    incidents.add_note(incident, f"oops {EXPOSED}", actor=operator)
    client.force_login(operator)
    session = client.session
    session["x"] = NEW
    session.save()
    text = database_text()
    assert EXPOSED in text and NEW in text


# --- the search ----------------------------------------------------------------------------


def test_finds_all_and_only_the_live_stacks_holding_the_value(five_stacks, monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    real = stack_secrets.hmac.compare_digest
    monkeypatch.setattr(
        stack_secrets.hmac,
        "compare_digest",
        lambda a, b: compared.append((a, b)) or real(a, b),
    )

    found = stack_secrets.stacks_holding(EXPOSED)

    assert [(stack.stack_name, key) for stack, key in found] == [
        ("acme-extra", "TELEGRAM_BOT_TOKEN"),
        ("acme-main", "ANTHROPIC_API_KEY"),
        ("globex-main", "ANTHROPIC_API_KEY"),
    ]
    assert len(compared) == 5  # every live secret, each in constant time; the deleted one never
    assert stack_secrets.stacks_holding("sk-nobody-has-this-value-000000") == []


def test_holdings_group_keys_per_stack(make_stack):
    make_stack(
        "acme", "acme-main", secrets={"ANTHROPIC_API_KEY": EXPOSED, "TELEGRAM_BOT_TOKEN": EXPOSED}
    )
    [holding] = leaks_rotation.holdings(EXPOSED)
    assert holding.keys == ("ANTHROPIC_API_KEY", "TELEGRAM_BOT_TOKEN")


# --- starting, batches, timeline ---------------------------------------------------------------


def test_start_rotation_keeps_new_values_encrypted_and_queues_the_job(
    five_stacks, operator, queued
):
    holders, _ = five_stacks
    incident = make_incident(operator, title="API key exposed")
    globex = holders[2].tenant

    rotations = leaks_rotation.start_rotation(
        incident, EXPOSED, default=NEW, per_tenant={globex.pk: NEW + "-globex"}, actor=operator
    )

    assert {r.stack.stack_name for r in rotations} == {"acme-main", "acme-extra", "globex-main"}
    by_name = {r.stack.stack_name: r for r in LeakRotation.objects.filter(incident=incident)}
    assert encryption.decrypt(by_name["acme-main"].new_value_encrypted) == NEW
    assert encryption.decrypt(by_name["globex-main"].new_value_encrypted) == NEW + "-globex"
    assert all(r.state == LeakState.PENDING for r in by_name.values())
    assert queued == [(leaks_rotation.ADVANCE_TASK, incident.pk)]
    assert "3 stack(s) of 2 tenant(s)" in rotation_lines(incident)[0]
    audited = AuditEvent.objects.filter(target_id=str(incident.pk), message__contains="3 stack")
    assert audited.exists()
    assert_nowhere(database_text())


@pytest.mark.parametrize(
    ("default", "problem"),
    [
        ("", "Enter a new value for all tenants"),
        (EXPOSED, "the exposed one"),
        (" padded", "spaces"),
    ],
)
def test_new_values_are_checked_and_never_named(five_stacks, operator, queued, default, problem):
    incident = make_incident(operator)
    with pytest.raises(ValidationError) as refused:
        leaks_rotation.start_rotation(incident, EXPOSED, default=default, actor=operator)
    assert problem in " ".join(refused.value.messages)
    assert_nowhere(" ".join(refused.value.messages))
    assert not LeakRotation.objects.exists() and queued == []


def test_no_second_rotation_while_one_is_under_way(five_stacks, operator, queued):
    incident = make_incident(operator)
    leaks_rotation.start_rotation(incident, EXPOSED, default=NEW, actor=operator)
    with pytest.raises(ValidationError, match="still under way"):
        leaks_rotation.start_rotation(incident, EXPOSED, default=NEW, actor=operator)


def finish(incident, status=OperationStatus.SUCCEEDED, error="") -> None:
    Operation.objects.filter(
        pk__in=LeakRotation.objects.filter(incident=incident).values("operation")
    ).filter(status=OperationStatus.QUEUED).update(status=status, error=error)


def test_batches_are_paced_and_noted_on_the_timeline(five_stacks, operator, queued, settings):
    settings.LEAK_ROTATIONS_PER_MINUTE = 2
    incident = make_incident(operator)
    leaks_rotation.start_rotation(incident, EXPOSED, default=NEW, actor=operator)
    assert queued[-1] == (leaks_rotation.ADVANCE_TASK, incident.pk)  # the first pass, at once

    leaks_jobs.advance(incident.pk)
    leaks_jobs.advance(incident.pk)  # within the same minute: no second batch

    rotations = LeakRotation.objects.filter(incident=incident)
    assert rotations.exclude(operation=None).count() == 2  # one batch: two in flight, no more
    first = rotations.exclude(operation=None).first()
    operation = first.operation
    assert operation.kind == OperationKind.ROTATE_SECRETS
    assert operation.parameters == {
        "incident_id": incident.pk,
        "leak_rotation": first.pk,
        "keys": first.keys,
    }
    assert first.new_value_encrypted == ""  # moved onto the stack's secret
    assert first.stack.secrets.get(key=first.key).reveal() == NEW
    assert first.batch == 1

    finish(incident)
    a_minute_later = timezone.now() + timedelta(seconds=61)
    assert leaks_jobs.unfinished_incidents() == [incident.pk]
    leaks_jobs.advance(incident.pk, now=a_minute_later)
    assert rotations.filter(batch=2).count() == 1 and not rotations.waiting().exists()
    finish(incident, OperationStatus.FAILED, "set_env: Coolify answered 500")
    assert leaks_jobs.advance_all_task() == {"incidents": 1}  # the schedule's pass
    assert leaks_jobs.unfinished_incidents() == []  # all noted: the schedule leaves it

    lines = rotation_lines(incident)
    assert any(line.startswith("Rotation batch 1: 2 stack(s) queued; 1 waiting") for line in lines)
    assert any(line.startswith("Rotation batch 2: 1 stack(s) queued") for line in lines)
    assert sum(line.startswith("Rotated ") for line in lines) == 2
    [failed] = [line for line in lines if line.startswith("Rotation failed")]
    assert "Coolify answered 500" in failed
    assert leaks_jobs.summary(incident)[LeakState.FAILED] == 1
    assert leaks_jobs.note_finished(incident) == 0  # each outcome once


def test_a_busy_stack_waits_then_fails_saying_why(make_stack, operator, queued, settings):
    stack = make_stack("acme", status=StackStatus.RUNNING, secrets={"ANTHROPIC_API_KEY": EXPOSED})
    Operation.objects.create(
        stack=stack, kind=OperationKind.RESTART, status=OperationStatus.RUNNING
    )
    incident = make_incident(operator)
    leaks_rotation.start_rotation(incident, EXPOSED, default=NEW, actor=operator)

    for _ in range(leaks_jobs.BUSY_ATTEMPTS - 1):
        leaks_jobs.queue_batch(incident)
    rotation = LeakRotation.objects.get(incident=incident)
    assert rotation.state == LeakState.PENDING and rotation.attempts == leaks_jobs.BUSY_ATTEMPTS - 1
    leaks_jobs.queue_batch(incident)

    rotation.refresh_from_db()
    assert rotation.state == LeakState.FAILED and "already has an operation" in rotation.error
    assert rotation.new_value_encrypted == ""
    assert stack.secrets.get().reveal() == EXPOSED  # nothing stored for a refused rotation


# --- resolving --------------------------------------------------------------------------------


def test_a_failed_rotation_blocks_resolving_unless_the_resolution_says_why(
    make_stack, operator, queued
):
    stack = make_stack("acme", status=StackStatus.RUNNING, secrets={"ANTHROPIC_API_KEY": EXPOSED})
    incident = make_incident(operator, status=IncidentStatus.ACKNOWLEDGED)
    leaks_rotation.start_rotation(incident, EXPOSED, default=NEW, actor=operator)
    leaks_jobs.queue_batch(incident)
    with pytest.raises(ValidationError, match="still under way"):  # whatever the resolution says
        incidents.change_status(
            incident, IncidentStatus.RESOLVED, actor=operator, resolution="rotation done"
        )
    finish(incident, OperationStatus.FAILED, "restart: boom")

    with pytest.raises(ValidationError) as blocked:
        incidents.change_status(
            incident, IncidentStatus.RESOLVED, actor=operator, resolution="Fixed."
        )
    assert stack.stack_name in str(blocked.value) and '"rotation"' in str(blocked.value)

    incidents.change_status(
        incident,
        IncidentStatus.RESOLVED,
        actor=operator,
        resolution="Key revoked at Anthropic; the rotation failed on acme-main, rotated by hand.",
    )
    assert incident.status == IncidentStatus.RESOLVED


# --- the page ---------------------------------------------------------------------------------


def test_the_two_step_page_rotates_and_leaves_no_value_anywhere(
    client, five_stacks, operator, queued, caplog
):
    caplog.set_level(logging.DEBUG)
    incident = make_incident(operator, title="API key exposed")
    client.force_login(operator)
    page = reverse("admin:ops_incident_change", args=[incident.pk])
    find = reverse("admin:ops_incident_leaks_find", args=[incident.pk])
    html = [client.get(page).content.decode()]
    assert find in html[0]

    step1 = client.get(find)
    posted = client.post(find, {"exposed": EXPOSED})
    assert posted.status_code == 302
    step2 = client.get(posted["Location"])
    body = step2.content.decode()
    for name in ("acme-main", "acme-extra", "globex-main"):
        assert name in body
    assert "globex-other" not in body and "initech-old" not in body
    token = posted["Location"].split("kept=")[1]
    rotate = reverse("admin:ops_incident_leaks_rotate", args=[incident.pk])
    wrong = client.post(rotate, {"kept": token, "new_value": EXPOSED})
    assert "the exposed one" in wrong.content.decode()
    done = client.post(rotate, {"kept": token, "new_value": NEW}, follow=True)

    assert LeakRotation.objects.filter(incident=incident).count() == 3
    leaks_jobs.queue_batch(incident)
    final = client.get(page).content.decode()
    assert 'id="cf-leak-rotations"' in final and "Waiting: 3</span>" in final
    live = client.get(page, headers={"HX-Request": "true"}).content.decode()
    assert "cf-leak-rotations" in live
    html += [
        step1.content.decode(),
        body,
        wrong.content.decode(),
        done.content.decode(),
        final,
        live,
    ]
    assert_nowhere(*html, caplog.text, database_text())
    assert client.get(posted["Location"]).status_code == 302  # the kept value was used once


def test_posted_values_are_hidden_from_error_reports(client, five_stacks, operator):
    from django.views.debug import SafeExceptionReporterFilter

    incident = make_incident(operator)
    client.force_login(operator)
    response = client.post(
        reverse("admin:ops_incident_leaks_find", args=[incident.pk]), {"exposed": EXPOSED}
    )
    hidden = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert hidden["exposed"] == SafeExceptionReporterFilter.cleansed_substitute


def test_support_cannot_rotate(client, five_stacks, support, operator):
    incident = make_incident(operator)
    client.force_login(support)
    for name in ("admin:ops_incident_leaks_find", "admin:ops_incident_leaks_rotate"):
        assert (
            client.post(reverse(name, args=[incident.pk]), {"exposed": EXPOSED}).status_code == 403
        )
    assert leaks.forms(incident, support) == ()
    assert leaks.forms(incident, operator) == (leaks.ROTATE_FORM,)
    assert not LeakRotation.objects.exists()


def test_waiting_rotations_can_be_resumed_by_an_operator(
    client, five_stacks, operator, support, queued
):
    incident = make_incident(operator)
    leaks_rotation.start_rotation(incident, EXPOSED, default=NEW, actor=operator)
    assert leaks.forms(incident, operator) == (leaks.RESUME_FORM,)
    resume = reverse("admin:ops_incident_work", args=[incident.pk, "leaks_resume"])

    client.force_login(support)
    assert client.post(resume).status_code == 403
    client.force_login(operator)
    assert client.post(resume).status_code == 302

    assert queued == [(leaks_rotation.ADVANCE_TASK, incident.pk)] * 2
    assert rotation_lines(incident)[-1] == "Rotation job queued again."
    leaks_jobs.advance(incident.pk)
    with pytest.raises(ValidationError, match="No rotation"):
        leaks_rotation.resume(incident, actor=operator)
