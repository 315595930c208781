"""A rollout plan has at most MAX_WAVES waves (ops/rollouts/plan.py): sizes whose last one
repeats ("1", "1%") would cut a large fleet into thousands of waves, each a gate and a block of
the preview page. Refused on the wave_sizes field, in the plan and beside the form's field."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from ops.models import Rollout
from ops.rollouts.plan import MAX_WAVES, build_plan, check_wave_count, wave_count
from stacks.choices import StackStatus
from stacks.compose import load_manifest
from stacks.models import Stack
from tenants.models import RolloutRing, Tenant

TEMPLATE = "openclaw-agent"
OLD = "0ld-version"
NEW = reverse("admin:ops_rollout_new")


def test_the_last_size_repeating_counts_toward_the_cap():
    assert MAX_WAVES == 50
    assert wave_count([10_000], ["1"]) == 10_000
    assert wave_count([10_000], ["1", "5%", "10%", "rest"]) == 4
    assert wave_count([5, 10_000, 40], ["1", "rest"]) == 6
    assert wave_count([10_000, 10_000, 10_000], ["1%"]) == 300  # 100 a ring
    assert wave_count([0, 3], ["1"]) == 3  # an empty ring has no wave


def test_too_many_waves_are_refused_naming_the_field_the_rule_and_the_count():
    with pytest.raises(ValidationError) as refused:
        check_wave_count([10_000], ["1"])
    [message] = refused.value.message_dict["wave_sizes"]
    assert "make 10,000 waves; at most 50" in message
    assert "end with “rest” or give larger sizes" in message

    with pytest.raises(ValidationError, match="make 51 waves"):
        check_wave_count([MAX_WAVES + 1], ["1"])
    check_wave_count([MAX_WAVES], ["1"])  # exactly the cap: allowed
    check_wave_count([10_000, 10_000, 10_000], ["1", "5%", "10%", "rest"])


@pytest.fixture
def fleet(db):
    """MAX_WAVES + 1 running stacks of one tenant on an older version (bulk: a fleet)."""
    tenant = Tenant.objects.create(slug="acme", name="Acme", rollout_ring=RolloutRing.STANDARD)
    Stack.objects.bulk_create(
        Stack(
            tenant=tenant,
            stack_name=f"acme-s{i:03d}",
            project_name="acme-project",
            template_name=TEMPLATE,
            status=StackStatus.RUNNING,
            template_version=OLD,
        )
        for i in range(MAX_WAVES + 1)
    )
    return tenant


def test_the_plan_refuses_sizes_that_make_too_many_waves(fleet):
    to = load_manifest(TEMPLATE).version
    with pytest.raises(ValidationError) as refused:
        build_plan(TEMPLATE, wave_sizes="1", to_version=to)
    assert list(refused.value.message_dict) == ["wave_sizes"]
    assert f"make {MAX_WAVES + 1} waves; at most {MAX_WAVES}" in str(refused.value)

    plan = build_plan(TEMPLATE, wave_sizes="1, rest", to_version=to)
    assert [w.count for w in plan.waves] == [1, MAX_WAVES]


def test_the_new_rollout_form_shows_the_refusal_beside_wave_sizes(client, operator, fleet):
    client.force_login(operator)

    response = client.get(NEW, {"template": TEMPLATE, "wave_sizes": "1", "soak_minutes": 5})

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["wave_sizes"], errors
    assert f"at most {MAX_WAVES}" in errors["wave_sizes"][0]
    assert 'id="id_wave_sizes_error"' in response.content.decode()
    assert response.context["plan"] is None
    assert not Rollout.objects.exists()
