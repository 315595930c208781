"""A rollout's plan (issue 17): wave sizes, the cut of each ring, which stacks are in it and
in what order, and what the preview says about those left out; the validation gate's verdict."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from ops.models import ChecklistRun, ItemState
from ops.procedures import POST_DEPLOY
from ops.rollouts import validation
from ops.rollouts.plan import build_plan, cut_waves, parse_wave_sizes
from stacks.choices import Containment, OperationKind, StackStatus
from stacks.compose import load_manifest
from stacks.models import Operation
from stacks.models.template_release import TemplateRelease
from tenants.models import RolloutRing, Tenant

TEMPLATE = "openclaw-agent"


def second_version() -> str:
    current = TemplateRelease.objects.get(
        template_name=TEMPLATE, version=load_manifest(TEMPLATE).version
    )
    home = '      - "HOME=/home/node"\n'
    compose = current.compose_text.replace(home, f'{home}      - "CF_TEST=1"\n', 1)
    return TemplateRelease.store(TEMPLATE, current.manifest_text, compose).version


def test_wave_sizes_are_counts_shares_and_a_last_rest():
    assert parse_wave_sizes("1, 5%, 10%, rest") == ["1", "5%", "10%", "rest"]
    for bad, why in (("", "at least one"), ("rest, 1", "last"), ("0", "not a wave size"),
                     ("150%", "not a wave size"), ("x", "not a wave size")):  # fmt: skip
        with pytest.raises(ValidationError, match=why) as refused:
            parse_wave_sizes(bad)
        assert "wave_sizes" in refused.value.message_dict


def test_shares_are_of_the_ring_rounded_up_and_rest_takes_what_is_left():
    assert cut_waves(35, ["1", "5%", "10%", "rest"]) == [
        ("1", 1), ("5%", 2), ("10%", 4), ("rest", 28)
    ]  # fmt: skip
    assert cut_waves(2, ["1", "5%", "10%", "rest"]) == [("1", 1), ("5%", 1)]
    assert cut_waves(5, ["2"]) == [("2", 2), ("2", 2), ("2", 1)]  # the last size repeats
    assert cut_waves(0, ["1", "rest"]) == []


@pytest.mark.django_db
def test_the_plan_orders_rings_then_tenants_then_names_and_leaves_out_what_it_must(make_stack):
    to = second_version()
    current = load_manifest(TEMPLATE).version
    rings = {"b-std": RolloutRing.STANDARD, "z-can": RolloutRing.CANARY, "a-last": RolloutRing.LAST,
             "a-std": RolloutRing.STANDARD}  # fmt: skip
    for slug, ring in rings.items():
        Tenant.objects.create(slug=slug, name=slug, rollout_ring=ring)
        for name in ("y", "x"):
            make_stack(slug, f"{slug}-{name}", status=StackStatus.RUNNING, template_version=current)
    make_stack("a-std", "a-std-stopped", status=StackStatus.STOPPED, template_version=current)
    make_stack("a-std", "a-std-iso", status=StackStatus.RUNNING, template_version=current,
               containment=Containment.ISOLATED)  # fmt: skip
    make_stack("a-std", "a-std-done", status=StackStatus.RUNNING, template_version=to)

    plan = build_plan(TEMPLATE, wave_sizes="1, rest", to_version=to)

    order = [label for wave in plan.waves for label in wave.stacks]
    assert order == [
        "z-can/z-can-x", "z-can/z-can-y", "a-std/a-std-x", "a-std/a-std-y",
        "b-std/b-std-x", "b-std/b-std-y", "a-last/a-last-x", "a-last/a-last-y",
    ]  # fmt: skip
    assert [(w.number, w.ring, w.count) for w in plan.waves] == [
        (1, "canary", 1), (2, "canary", 1), (3, "standard", 1), (4, "standard", 3),
        (5, "last", 1), (6, "last", 1),
    ]  # fmt: skip
    assert plan.from_versions == [current] and plan.diff_from == current
    assert '+      - "CF_TEST=1"' in plan.diff
    notes = " ".join(plan.notes)
    assert "1 stack(s) of openclaw-agent not running" in notes
    assert "1 isolated" in notes

    only = build_plan(TEMPLATE, filters={"ring": "last", "tenant": ""}, to_version=to)
    assert only.total == 2 and only.filters == {"ring": "last"}
    with pytest.raises(ValidationError) as refused:
        build_plan(TEMPLATE, filters={"status": StackStatus.STOPPED}, to_version=to)
    assert "status" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        build_plan(TEMPLATE, to_version="0123456789ab")
    assert "unknown" in refused.value.message_dict["to_version"][0]
    with pytest.raises(ValidationError, match="needs"):
        build_plan(TEMPLATE, filters={"tenant": "nobody"}, to_version=to)


@pytest.mark.django_db
def test_the_validation_verdict_reads_the_automatic_items_only(make_stack):
    stack = make_stack(status=StackStatus.RUNNING)
    operation = Operation.objects.create(
        stack=stack, kind=OperationKind.REDEPLOY, requested_by_repr="test"
    )
    assert validation.verdict(operation)[0] == validation.WAITING

    run = validation.open_run(operation)
    assert validation.open_run(operation) == run  # opened once
    assert run.procedure.slug == POST_DEPLOY and run.operation == operation
    assert validation.verdict(operation)[0] == validation.WAITING  # probes not run
    probed = run.items.exclude(step__probe="")
    first = probed.first()
    probed.update(state=ItemState.PASSED)
    run.items.filter(step__probe="").update(state=ItemState.PENDING)  # people's: not waited on
    assert validation.verdict(operation) == (validation.PASSED, "")

    probed.filter(pk=first.pk).update(state=ItemState.FAILED)
    verdict, why = validation.verdict(operation)
    assert verdict == validation.FAILED and first.step.text in why
    assert ChecklistRun.objects.filter(operation=operation).count() == 1


@pytest.mark.django_db
def test_the_tenant_form_and_list_offer_the_rollout_ring(admin_client):
    Tenant.objects.create(slug="acme", name="Acme", rollout_ring=RolloutRing.LAST)
    listing = admin_client.get("/admin/tenants/tenant/?rollout_ring__exact=last")
    assert listing.status_code == 200 and b"acme" in listing.content
    form = admin_client.get("/admin/tenants/tenant/add/")
    assert b'name="rollout_ring"' in form.content
