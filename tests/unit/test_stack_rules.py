"""The stacks rules moved out of the admin and the commands: which repairs are destructive or
safe (one definition for the admin and `reconcile --repair`), when a reconcile run is lost,
which repair a report offers, who may retry or cancel, the deploy preview store, status badges."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from stacks import permissions, previews, reconcile
from stacks.admin.inlines import status_badge
from stacks.choices import OperationKind, Repair, StackStatus
from stacks.models import Operation, ReconcileRun
from stacks.plan import DeployRequest

# --- repairs: destructive and safe, said once on Repair -----------------------------------------


def test_only_deleting_a_record_is_destructive():
    assert [kind for kind in Repair if kind.is_destructive] == [Repair.DELETE_RECORD]


def test_safe_repairs_create_delete_and_take_nothing():
    """`--repair` writes records and marks gone services; never imports, deletes or trusts
    Coolify's status on its own."""
    assert {kind for kind in Repair if kind.is_safe} == {Repair.PUSH_RECORD, Repair.MARK_ERROR}
    assert not any(kind.is_safe and kind.is_destructive for kind in Repair)


def test_the_command_applies_the_safe_repairs_and_imports_when_asked():
    assert reconcile.unattended_kinds(safe=False, imports=False) == set()
    assert reconcile.unattended_kinds(safe=True, imports=False) == {
        Repair.PUSH_RECORD,
        Repair.MARK_ERROR,
    }
    assert reconcile.unattended_kinds(safe=False, imports=True) == {Repair.IMPORT}


def test_apply_repairs_uses_the_first_wanted_repair_of_each_row(monkeypatch):
    done: list[tuple[str, str]] = []

    def fake_repair(kind, target, *, actor):
        done.append((kind, target))
        if target == "stack:2":
            raise reconcile.RepairRefused("gone")
        return "ok"

    monkeypatch.setattr("stacks.reconcile.repairs.repair", fake_repair)
    rows = [
        {"target": "stack:1", "repairs": [Repair.TAKE_COOLIFY_STATUS, Repair.PUSH_RECORD]},
        {"target": "stack:2", "repairs": [Repair.MARK_ERROR]},
        {"target": "record:r", "repairs": [Repair.DELETE_RECORD]},
    ]
    applied = reconcile.apply_repairs(
        rows, reconcile.unattended_kinds(safe=True, imports=False), actor="t"
    )
    assert done == [(Repair.PUSH_RECORD, "stack:1"), (Repair.MARK_ERROR, "stack:2")]
    assert applied == [
        {"target": "stack:1", "repair": Repair.PUSH_RECORD, "result": "ok"},
        {"target": "stack:2", "repair": Repair.MARK_ERROR, "error": "gone"},
    ]


def _finished_run(**fields) -> ReconcileRun:
    return ReconcileRun.objects.create(finished_at=timezone.now(), **fields)


@pytest.mark.django_db
def test_the_report_marks_destructive_buttons_from_repair():
    run = _finished_run(
        drift=[
            {
                "kind": "orphan_record",
                "target": "record:r",
                "repairs": [Repair.DELETE_RECORD, "unknown"],
            }
        ]
    )
    (row,) = reconcile.report_rows(run)
    assert row["kind_label"] == "PocketBase record unknown to cfadmin"
    assert row["repair_buttons"] == [
        {"kind": Repair.DELETE_RECORD, "label": Repair.DELETE_RECORD.label, "destructive": True}
    ]
    assert reconcile.report_rows(None) == []


@pytest.mark.django_db
def test_a_repair_is_offered_only_from_the_latest_report_and_confirmed_if_destructive():
    drift = [
        {"target": "record:r", "repairs": [Repair.DELETE_RECORD]},
        {"target": "stack:1", "repairs": [Repair.PUSH_RECORD]},
    ]
    older = _finished_run(drift=drift)
    latest = _finished_run(drift=drift)
    assert reconcile.is_latest(latest) and not reconcile.is_latest(older)
    assert "newer report" in reconcile.repair_refusal(
        older, Repair.PUSH_RECORD, "stack:1", confirmed=False
    )
    assert "not in this report" in reconcile.repair_refusal(
        latest, Repair.MARK_ERROR, "stack:1", confirmed=False
    )
    assert "not in this report" in reconcile.repair_refusal(
        None, Repair.PUSH_RECORD, "stack:1", confirmed=False
    )
    assert "I am sure" in reconcile.repair_refusal(
        latest, Repair.DELETE_RECORD, "record:r", confirmed=False
    )
    assert reconcile.repair_refusal(latest, Repair.DELETE_RECORD, "record:r", confirmed=True) == ""
    assert reconcile.repair_refusal(latest, Repair.PUSH_RECORD, "stack:1", confirmed=False) == ""


# --- lost runs ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_unfinished_for_longer_than_the_limit_is_lost():
    run = ReconcileRun.objects.create()
    assert not reconcile.is_lost(run) and reconcile.comparison_running()
    past = timezone.now() - reconcile.UNFINISHED_AFTER - timedelta(seconds=1)
    ReconcileRun.objects.filter(pk=run.pk).update(started_at=past)
    run.refresh_from_db()
    assert reconcile.is_lost(run) and not reconcile.comparison_running()
    run.finished_at = timezone.now()
    assert not reconcile.is_lost(run)  # finished late is finished


# --- who may retry and cancel -------------------------------------------------------------------


def test_retrying_a_delete_needs_the_admin_role(viewer, operator, admin_role):
    failed_delete = Operation(kind=OperationKind.DELETE)
    failed_deploy = Operation(kind=OperationKind.DEPLOY)
    assert permissions.may_retry(operator, failed_deploy)
    assert permissions.may_retry(operator, None)
    assert not permissions.may_retry(operator, failed_delete)
    assert permissions.may_retry(admin_role, failed_delete)
    assert not permissions.may_retry(viewer, failed_deploy)


def test_cancelling_needs_the_permission_of_the_operation_kind(operator, admin_role):
    assert permissions.may_cancel(operator, Operation(kind=OperationKind.RESTART))
    assert not permissions.may_cancel(operator, Operation(kind=OperationKind.DELETE))
    assert permissions.may_cancel(admin_role, Operation(kind=OperationKind.DELETE))


def test_reconcile_is_the_operators_not_the_viewers(viewer, operator):
    assert permissions.may_reconcile(operator) and not permissions.may_reconcile(viewer)


# --- the deploy preview store -------------------------------------------------------------------

REQUEST = DeployRequest(
    tenant="customer-123",
    project_name="customer-123-project",
    template="telegram-bot",
    stack_name="customer-123-main",
    domains=[("webui", "a.example.com")],
    env={"TELEGRAM_BOT_TOKEN": "123:very-secret"},
)


def test_a_preview_is_kept_encrypted_and_used_once():
    session: dict = {}
    token = previews.remember(session, REQUEST)
    assert "very-secret" not in repr(session)
    assert previews.take(session, token) == REQUEST
    assert previews.take(session, token) is None  # used already
    assert previews.take(session, "no-such-token") is None


def test_a_preview_expires_after_its_lifetime():
    session: dict = {}
    token = previews.remember(session, REQUEST, now=1000.0)
    later = 1000.0 + previews.PREVIEW_LIFETIME
    assert previews.take(session, token, now=later) == REQUEST
    token = previews.remember(session, REQUEST, now=1000.0)
    assert previews.take(session, token, now=later + 1) is None


def test_only_the_newest_previews_are_kept():
    session: dict = {}
    tokens = [previews.remember(session, REQUEST, now=float(i)) for i in range(7)]
    kept = session[previews.PREVIEWS_SESSION_KEY]
    assert set(kept) == set(tokens[-previews.PREVIEWS_KEPT :])


# --- status badges ------------------------------------------------------------------------------


def test_every_status_has_its_badge_class():
    assert StackStatus.ERROR.badge_class == "cf-status cf-status-error"
    assert len({status.badge_class for status in StackStatus}) == len(StackStatus)


@pytest.mark.django_db
def test_the_admin_badge_uses_the_status_class(make_stack):
    stack = make_stack(status=StackStatus.RUNNING)
    assert status_badge(stack) == '<span class="cf-status cf-status-running">Running</span>'


def test_error_and_stopped_stacks_need_attention():
    assert {status for status in StackStatus if status.needs_attention} == {
        StackStatus.ERROR,
        StackStatus.STOPPED,
    }
