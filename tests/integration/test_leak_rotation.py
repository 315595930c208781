"""Rotate a leaked value everywhere, against the Coolify simulator and a real PocketBase: the
two-step page run by an operator, the paced job running the operations, Coolify's env of
all and only the holding stacks changed, and no canary value anywhere."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from ops import incidents
from ops.models import IncidentEvent, IncidentEventKind, IncidentStatus
from ops.models.leaks import LeakRotation, LeakState
from ops.response import leaks_jobs, leaks_rotation
from stacks.choices import OperationKind, OperationStatus
from stacks.models import Operation
from stacks.provisioning import run_operation
from stacks.services import request_operation
from tests.conftest import no_sleep
from tests.unit.incident_helpers import make_incident
from tests.unit.test_leak_rotation import EXPOSED, NEW, OTHER, assert_nowhere, database_text

pytestmark = pytest.mark.integration

TELEGRAM = "123456789:test-telegram-token-value"


def deployed(make_stack, remote, operator, tenant, name, secrets):
    stack = make_stack(tenant, name, template_name="openclaw-agent", secrets=secrets)
    operation = request_operation(stack, OperationKind.DEPLOY, actor=operator)
    assert run_operation(operation.pk, remote=remote, sleep=no_sleep)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    stack.refresh_from_db()
    return stack


def coolify_envs(coolify_sim) -> dict[str, dict[str, str]]:
    return {s["uuid"]: s["envs"] for s in coolify_sim.api.snapshot()["services"]}


@pytest.mark.django_db(transaction=True)
def test_rotate_everywhere_changes_all_and_only_the_holders(
    client, make_stack, remote, coolify_sim, operator, settings, caplog
):
    caplog.set_level(logging.DEBUG)
    settings.LEAK_ROTATIONS_PER_MINUTE = 2  # three holders: two batches
    holders = {
        "acme-main": deployed(make_stack, remote, operator, "acme", "acme-main",
                              {"ANTHROPIC_API_KEY": EXPOSED, "TELEGRAM_BOT_TOKEN": TELEGRAM}),
        "acme-bot": deployed(make_stack, remote, operator, "acme", "acme-bot",
                             {"ANTHROPIC_API_KEY": OTHER, "TELEGRAM_BOT_TOKEN": EXPOSED}),
        "globex-main": deployed(make_stack, remote, operator, "globex", "globex-main",
                                {"ANTHROPIC_API_KEY": EXPOSED}),
    }  # fmt: skip
    others = {
        "globex-other": deployed(make_stack, remote, operator, "globex", "globex-other",
                                 {"ANTHROPIC_API_KEY": OTHER}),
        "initech-main": deployed(make_stack, remote, operator, "initech", "initech-main",
                                 {"ANTHROPIC_API_KEY": OTHER, "TELEGRAM_BOT_TOKEN": TELEGRAM}),
    }  # fmt: skip
    before = coolify_envs(coolify_sim)
    incident = make_incident(operator, title="Anthropic key exposed in a public gist")
    client.force_login(operator)
    find = reverse("admin:ops_incident_leaks_find", args=[incident.pk])
    page = reverse("admin:ops_incident_change", args=[incident.pk])

    html = [client.get(page).content.decode(), client.get(find).content.decode()]
    posted = client.post(find, {"exposed": EXPOSED})
    step2 = client.get(posted["Location"])
    token = posted["Location"].split("kept=")[1]
    done = client.post(
        reverse("admin:ops_incident_leaks_rotate", args=[incident.pk]),
        {"kept": token, "new_value": NEW},
        follow=True,
    )
    html += [step2.content.decode(), done.content.decode()]

    def run_queued() -> None:
        """The worker: run the incident's queued operations."""
        ops = Operation.objects.filter(
            pk__in=LeakRotation.objects.filter(incident=incident).values("operation"),
            status=OperationStatus.QUEUED,
        )
        for operation in ops:
            assert run_operation(operation.pk, remote=remote, sleep=no_sleep)

    # The schedule's passes, a minute apart, with the worker running what each queued.
    now = timezone.now()
    for minute in range(4):
        result = leaks_jobs.advance(incident.pk, now=now + timedelta(minutes=minute))
        run_queued()
    result = leaks_jobs.advance(incident.pk, now=now + timedelta(minutes=5))

    assert result[LeakState.SUCCEEDED] == 3 and result[LeakState.FAILED] == 0
    after = coolify_envs(coolify_sim)
    acme, bot, globex = (holders[name].coolify_service_uuid for name in holders)
    assert after[acme] == {**before[acme], "ANTHROPIC_API_KEY": NEW}
    assert after[bot] == {**before[bot], "TELEGRAM_BOT_TOKEN": NEW}
    assert after[globex] == {**before[globex], "ANTHROPIC_API_KEY": NEW}
    for stack in others.values():
        assert after[stack.coolify_service_uuid] == before[stack.coolify_service_uuid]
    rotations = LeakRotation.objects.filter(incident=incident)
    assert sorted(rotations.values_list("batch", flat=True)) == [1, 1, 2]
    assert all(r.operation.parameters["incident_id"] == incident.pk for r in rotations)
    lines = list(
        IncidentEvent.objects.filter(
            incident=incident, kind=IncidentEventKind.ROTATION
        ).values_list("message", flat=True)
    )
    assert sum(line.startswith("Rotated ") for line in lines) == 3
    assert sum(line.startswith("Rotation batch ") for line in lines) == 2

    [job] = [t.task for t in OrmQ.objects.all() if t.task["func"] == leaks_rotation.ADVANCE_TASK]
    assert job["args"] == (incident.pk,)  # the django-q row carries the incident's id only
    html.append(client.get(page).content.decode())
    incidents.change_status(
        incident, IncidentStatus.RESOLVED, actor=operator, resolution="Key rotated everywhere."
    )
    assert_nowhere(*html, caplog.text, database_text())
