"""Stacks > Reconcile in the admin through Django's test client, the reconcile tasks, and the
roles' reconcile permissions. Nothing is queued: `enqueue` is replaced by a recorder."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.sites import site
from django.contrib.messages import get_messages
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from cfadmin.models import AuditEvent
from stacks import tasks
from stacks.choices import DriftKind, Repair
from stacks.clients.errors import ClientError
from stacks.models import ReconcileRun
from stacks.reconcile import Drift, RepairRefused
from tests.fakes import FakeCoolify, FakePocketBase

pytestmark = pytest.mark.django_db

LATEST = reverse("admin:stacks_reconcile")
RUN = reverse("admin:stacks_reconcile_run")
CHANGELIST = reverse("admin:stacks_reconcilerun_changelist")

STATUS_DRIFT = Drift(
    DriftKind.SERVICE_STATUS,
    "customer-123",
    "customer-123-main",
    "cfadmin says running, Coolify says exited.",
    [Repair.TAKE_COOLIFY_STATUS],
    stack_id=41,
    service_uuid="svc-41",
).as_dict()
MISSING_DRIFT = Drift(
    DriftKind.MISSING_SERVICE,
    "customer-123",
    "customer-9-main",
    "cfadmin says running, but Coolify has no service svc-9.",
    [Repair.MARK_ERROR],
    stack_id=9,
    service_uuid="svc-9",
).as_dict()
ORPHAN_RECORD = Drift(
    DriftKind.ORPHAN_RECORD,
    "gone",
    "gone-main",
    "PocketBase has a record (status running) for a stack cfadmin does not know.",
    [Repair.DELETE_RECORD],
    record_id="rec-gone",
).as_dict()


def make_run(drift: list[dict[str, Any]] = (), *, age_minutes: int = 0, **fields) -> ReconcileRun:
    fields.setdefault("requested_by_repr", "schedule")
    fields.setdefault("stacks_checked", 3)
    started = timezone.now() - timedelta(minutes=age_minutes)
    fields.setdefault("finished_at", started)
    return ReconcileRun.objects.create(drift=list(drift), started_at=started, **fields)


def repair_url(run: ReconcileRun) -> str:
    return reverse("admin:stacks_reconcile_repair", args=[run.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    """Calls to stacks.admin.reconcile.enqueue, recorded instead of queued."""
    calls: list[tuple] = []
    monkeypatch.setattr(
        "stacks.admin.reconcile.enqueue", lambda func, *args: calls.append((func, *args))
    )
    return calls


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


# --- who sees what -------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["viewer", "support"])
def test_read_only_roles_see_the_report_without_buttons(request, as_user, persona):
    """Viewer and support read the drift and the repair names, but get no forms."""
    make_run([STATUS_DRIFT, MISSING_DRIFT])
    client = as_user(request.getfixturevalue(persona))
    response = client.get(LATEST)
    assert response.status_code == 200
    content = response.content.decode()
    assert "2 drift found" in content
    assert "cfadmin says running, Coolify says exited." in content
    assert "Mark the stack as error" in content  # named, as text
    assert "Reconcile now" not in content
    assert "<form" not in content.split('id="cf-reconcile"')[1]
    assert 'name="repair"' not in content


@pytest.mark.parametrize("persona", ["viewer", "support"])
def test_read_only_roles_see_the_list_of_runs(request, as_user, persona):
    """The changelist shows runs to anyone with the view permission."""
    make_run([STATUS_DRIFT], requested_by_repr="cli:ops")
    response = as_user(request.getfixturevalue(persona)).get(CHANGELIST)
    assert response.status_code == 200
    assert "cli:ops" in response.content.decode()


@pytest.mark.parametrize("persona", ["viewer", "support"])
def test_read_only_roles_cannot_run_or_repair(request, as_user, queued, persona):
    """Reconcile is operator and up: 403 on both POSTs, nothing queued."""
    run = make_run([STATUS_DRIFT])
    client = as_user(request.getfixturevalue(persona))
    assert client.post(RUN).status_code == 403
    response = client.post(
        repair_url(run), {"repair": Repair.TAKE_COOLIFY_STATUS, "target": "stack:41"}
    )
    assert response.status_code == 403
    assert queued == []


def test_anonymous_visitors_are_sent_to_the_login(client, queued):
    """The report is behind the admin login; the run POST queues nothing."""
    make_run()
    response = client.get(LATEST)
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
    assert client.post(RUN).status_code == 302
    assert queued == []


def test_operators_see_reconcile_now_and_repair_forms(as_user, operator):
    """Each repair is a form posting the target and the kind to the run's repair URL."""
    run = make_run([STATUS_DRIFT, MISSING_DRIFT])
    content = as_user(operator).get(LATEST).content.decode()
    assert "Reconcile now" in content
    assert f'action="{RUN}"' in content
    assert content.count(f'action="{repair_url(run)}"') == 2
    assert '<input type="hidden" name="target" value="stack:41">' in content
    assert 'name="repair" value="take_coolify_status"' in content
    assert 'name="repair" value="mark_error"' in content
    assert "I am sure" not in content  # no destructive repair listed


def test_a_destructive_repair_asks_for_confirmation(as_user, operator):
    """delete_record's form carries the "I am sure" checkbox."""
    make_run([ORPHAN_RECORD])
    content = as_user(operator).get(LATEST).content.decode()
    assert '<input type="checkbox" name="confirm" value="yes"> I am sure' in content
    assert '<input type="hidden" name="target" value="record:rec-gone">' in content
    assert 'name="repair" value="delete_record"' in content


def test_a_drift_without_repairs_shows_a_dash(as_user, operator):
    """A missing service of an error stack has no button."""
    make_run([{**MISSING_DRIFT, "repairs": []}])
    content = as_user(operator).get(LATEST).content.decode()
    assert 'name="repair"' not in content
    assert "—" in content.split('class="cf-drift cf-drift-missing_service"')[1]


def test_drift_rows_name_the_kind_and_link_the_stack(as_user, viewer):
    """Kind label, the stack link for stack targets, plain names for orphans."""
    make_run([STATUS_DRIFT, ORPHAN_RECORD])
    content = as_user(viewer).get(LATEST).content.decode()
    assert "Coolify status differs from cfadmin" in content
    assert "PocketBase record unknown to cfadmin" in content
    stack_url = reverse("admin:stacks_stack_change", args=[41])
    assert f'<a href="{stack_url}">customer-123/customer-123-main</a>' in content
    assert "record rec-gone" in content
    assert 'data-target="record:rec-gone"' in content


# --- run and repair POSTs ------------------------------------------------------------------------


def test_reconcile_now_queues_the_task_with_the_user(as_user, operator, queued):
    """One reconcile_task with the operator's pk; back to the report."""
    response = as_user(operator).post(RUN)
    assert response.status_code == 302
    assert response["Location"] == LATEST
    assert queued == [("stacks.tasks.reconcile_task", operator.pk)]
    assert messages_of(response) == ["Reconcile queued; reload in a moment for the new report."]


def test_reconcile_now_needs_post(as_user, operator, queued):
    """GET on the run URL is 405 and queues nothing."""
    assert as_user(operator).get(RUN).status_code == 405
    assert queued == []


def test_a_listed_repair_is_queued(as_user, operator, queued):
    """kind, target and the user's pk go to repair_drift_task."""
    run = make_run([STATUS_DRIFT, MISSING_DRIFT])
    response = as_user(operator).post(
        repair_url(run), {"repair": Repair.MARK_ERROR, "target": "stack:9"}
    )
    assert response.status_code == 302 and response["Location"] == LATEST
    assert queued == [("stacks.tasks.repair_drift_task", "mark_error", "stack:9", operator.pk)]
    assert messages_of(response) == [
        "Mark the stack as error queued for stack:9; the report refreshes when it is done."
    ]
    [requested] = AuditEvent.objects.filter(changes__job="repair_drift")
    assert requested.actor == operator
    assert requested.message == "Mark the stack as error requested for stack:9"


def test_a_refused_repair_is_neither_queued_nor_recorded(as_user, operator, queued):
    run = make_run([STATUS_DRIFT])
    as_user(operator).post(repair_url(run), {"repair": Repair.DELETE_RECORD, "target": "stack:9"})
    assert queued == []
    assert not AuditEvent.objects.filter(changes__job="repair_drift").exists()


def test_a_repair_for_another_drifts_target_is_refused(as_user, operator, queued):
    """mark_error is listed, but for stack:9, not stack:41."""
    run = make_run([STATUS_DRIFT, MISSING_DRIFT])
    response = as_user(operator).post(
        repair_url(run), {"repair": Repair.MARK_ERROR, "target": "stack:41"}
    )
    assert response.status_code == 302
    assert queued == []
    assert messages_of(response) == [
        "That repair is not in this report; reconcile again and use the new report."
    ]


def test_a_repair_of_a_target_not_in_the_run_is_refused(as_user, operator, queued):
    """An unlisted target is refused with the same message."""
    run = make_run([STATUS_DRIFT])
    response = as_user(operator).post(
        repair_url(run), {"repair": Repair.PUSH_RECORD, "target": "stack:1234"}
    )
    assert queued == []
    assert "That repair is not in this report" in messages_of(response)[0]


def test_a_repair_of_a_run_that_does_not_exist_is_refused(as_user, operator, queued):
    """A missing run lists nothing."""
    response = as_user(operator).post(
        reverse("admin:stacks_reconcile_repair", args=[999999]),
        {"repair": Repair.TAKE_COOLIFY_STATUS, "target": "stack:41"},
    )
    assert response.status_code == 302
    assert queued == []
    assert "That repair is not in this report" in messages_of(response)[0]


def test_a_repair_with_a_non_numeric_run_id_is_refused(as_user, operator, queued):
    """A malformed run id in the URL is refused like a missing run, not a crash."""
    make_run([STATUS_DRIFT])
    response = as_user(operator).post(
        reverse("admin:stacks_reconcile_repair", args=["not-a-run"]),
        {"repair": Repair.TAKE_COOLIFY_STATUS, "target": "stack:41"},
    )
    assert response.status_code == 404
    assert queued == []


def test_delete_record_without_confirmation_is_refused(as_user, operator, queued):
    """Not ticked: error naming “I am sure”, nothing queued."""
    run = make_run([ORPHAN_RECORD])
    response = as_user(operator).post(
        repair_url(run), {"repair": Repair.DELETE_RECORD, "target": "record:rec-gone"}
    )
    assert queued == []
    assert messages_of(response) == [
        "Delete the PocketBase record: tick “I am sure” first; nothing was changed."
    ]


def test_delete_record_with_a_wrong_confirmation_is_refused(as_user, operator, queued):
    """Only confirm=yes counts."""
    run = make_run([ORPHAN_RECORD])
    as_user(operator).post(
        repair_url(run),
        {"repair": Repair.DELETE_RECORD, "target": "record:rec-gone", "confirm": "on"},
    )
    assert queued == []


def test_delete_record_with_confirmation_is_queued(as_user, operator, queued):
    """Ticked: the delete is queued."""
    run = make_run([ORPHAN_RECORD])
    response = as_user(operator).post(
        repair_url(run),
        {"repair": Repair.DELETE_RECORD, "target": "record:rec-gone", "confirm": "yes"},
    )
    assert queued == [
        ("stacks.tasks.repair_drift_task", "delete_record", "record:rec-gone", operator.pk)
    ]
    assert messages_of(response)[0].startswith("Delete the PocketBase record queued for")


# --- runs old and new, empty, failed -------------------------------------------------------------


def test_only_the_latest_run_has_repair_buttons(as_user, operator):
    """An older run's page links to the newer report and shows no forms."""
    older = make_run([STATUS_DRIFT], age_minutes=30)
    newer = make_run([MISSING_DRIFT])
    client = as_user(operator)

    old_page = client.get(reverse("admin:stacks_reconcilerun_change", args=[older.pk]))
    assert old_page.status_code == 200
    old = old_page.content.decode()
    assert f'<a href="{LATEST}">a newer report exists</a>' in old
    assert "cfadmin says running, Coolify says exited." in old
    assert 'name="repair"' not in old
    assert f'data-run="{older.pk}"' in old

    new = client.get(reverse("admin:stacks_reconcilerun_change", args=[newer.pk])).content
    assert b"a newer report exists" not in new
    assert b'name="repair" value="mark_error"' in new


def test_the_latest_view_shows_the_newest_run(as_user, viewer):
    """Of two runs the report shows the one started last."""
    make_run([STATUS_DRIFT], age_minutes=30)
    newest = make_run([])
    content = as_user(viewer).get(LATEST).content.decode()
    assert f'data-run="{newest.pk}"' in content
    assert "In sync" in content
    assert "a newer report exists" not in content


def test_the_change_view_of_a_missing_run_is_404(as_user, viewer):
    """An unknown run id is not found."""
    response = as_user(viewer).get(reverse("admin:stacks_reconcilerun_change", args=[424242]))
    assert response.status_code == 404


def test_no_run_yet_is_an_empty_state(as_user, operator):
    """Before any run: the empty-state sentence, and still "Reconcile now"."""
    response = as_user(operator).get(LATEST)
    assert response.status_code == 200
    content = response.content.decode()
    assert '<p id="cf-reconcile-summary">No comparison has run yet.</p>' in content
    assert "Reconcile now" in content
    assert "data-run=" not in content


def test_a_run_that_could_not_compare_shows_its_error(as_user, viewer):
    """The error is the summary and the error note."""
    make_run(error="Coolify: HTTP 503: down for maintenance", stacks_checked=0)
    content = as_user(viewer).get(LATEST).content.decode()
    assert "<strong>Could not compare</strong>" in content
    assert (
        '<p class="errornote" id="cf-reconcile-error">Coolify: HTTP 503: down for maintenance</p>'
        in content
    )
    assert "In sync" not in content


def test_a_run_without_drift_says_in_sync(as_user, viewer):
    """No drift: "In sync", who asked, how many stacks were checked, no table."""
    make_run([], requested_by_repr="operator", stacks_checked=7)
    content = as_user(viewer).get(LATEST).content.decode()
    assert "<strong>In sync</strong>" in content
    assert "by operator, 7 stacks checked" in content
    assert 'id="cf-drift"' not in content


def test_the_note_of_a_run_is_shown(as_user, viewer):
    """What was repaired just before the run."""
    make_run([], note="Mark the stack as error (stack:9): done")
    content = as_user(viewer).get(LATEST).content.decode()
    assert "Before this report: Mark the stack as error (stack:9): done" in content


# --- nobody edits runs ---------------------------------------------------------------------------


def test_nobody_may_add_change_or_delete_runs(superuser):
    """Even a superuser: runs are written by reconcile only."""
    request = RequestFactory().get("/")
    request.user = superuser
    run = make_run([STATUS_DRIFT])
    model_admin = site._registry[ReconcileRun]
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request, run) is False
    assert model_admin.has_delete_permission(request, run) is False
    assert model_admin.has_view_permission(request, run) is True


def test_add_and_delete_pages_are_forbidden_even_for_a_superuser(as_user, superuser):
    """The add and delete URLs answer 403 and the run stays."""
    run = make_run([STATUS_DRIFT])
    client = as_user(superuser)
    assert client.get(reverse("admin:stacks_reconcilerun_add")).status_code == 403
    delete_url = reverse("admin:stacks_reconcilerun_delete", args=[run.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert ReconcileRun.objects.filter(pk=run.pk).exists()


def test_posting_to_a_runs_page_changes_nothing(as_user, superuser):
    """The change URL only renders the report."""
    run = make_run([STATUS_DRIFT], stacks_checked=3)
    response = as_user(superuser).post(
        reverse("admin:stacks_reconcilerun_change", args=[run.pk]),
        {"stacks_checked": "99", "error": "edited", "drift": "[]"},
    )
    assert response.status_code == 200
    run.refresh_from_db()
    assert (run.stacks_checked, run.error, len(run.drift)) == (3, "", 1)


def test_the_changelist_has_no_add_link(as_user, superuser):
    """No "Add reconcile run" button."""
    make_run()
    content = as_user(superuser).get(CHANGELIST).content.decode()
    assert reverse("admin:stacks_reconcilerun_add") not in content


def test_the_admin_index_links_to_the_reconcile_page(as_user, viewer):
    """Admin home links to Reconcile."""
    content = as_user(viewer).get(reverse("admin:index")).content.decode()
    assert f'<a href="{LATEST}">Reconcile</a>' in content


# --- tasks ---------------------------------------------------------------------------------------


@pytest.fixture
def stub_remotes(monkeypatch):
    """run_reconcile and repair read stub clients instead of settings' Coolify and PocketBase."""
    for module in ("stacks.reconcile.runs", "stacks.reconcile.repairs"):
        monkeypatch.setattr(f"{module}.get_coolify", lambda: FakeCoolify())
        monkeypatch.setattr(f"{module}.get_pocketbase", lambda: FakePocketBase())


def test_a_refused_repair_is_noted_on_the_new_run(monkeypatch, stub_remotes, operator):
    """RepairRefused becomes "Not repaired: …" on the run made afterwards."""
    seen: list[tuple] = []

    def refuse(kind, target, *, actor):
        seen.append((kind, target, actor))
        raise RepairRefused("The Coolify service exists now; reconcile again.")

    monkeypatch.setattr("stacks.reconcile.repair", refuse)
    done = tasks.repair_drift_task(Repair.MARK_ERROR, "stack:9", operator.pk)
    assert done == "Not repaired: The Coolify service exists now; reconcile again."
    assert seen == [("mark_error", "stack:9", operator)]
    run = ReconcileRun.objects.get()
    assert run.note == (
        "Mark the stack as error (stack:9): "
        "Not repaired: The Coolify service exists now; reconcile again."
    )
    assert (run.requested_by_repr, run.error, run.drift) == ("operator", "", [])


def test_a_client_error_during_a_repair_is_noted_too(monkeypatch, stub_remotes, operator):
    """A remote failure is reported the same way, not raised."""

    def fail(kind, target, *, actor):
        raise ClientError("boom", service="PocketBase")

    monkeypatch.setattr("stacks.reconcile.repair", fail)
    done = tasks.repair_drift_task(Repair.PUSH_RECORD, "stack:3", operator.pk)
    assert done == "Not repaired: PocketBase: boom"
    assert ReconcileRun.objects.get().note.endswith("(stack:3): Not repaired: PocketBase: boom")


def test_a_done_repair_is_noted_on_the_new_run(monkeypatch, stub_remotes, operator):
    """The repair's own sentence is the note."""
    monkeypatch.setattr(
        "stacks.reconcile.repair", lambda kind, target, *, actor: "Deleted orphan record r1."
    )
    done = tasks.repair_drift_task(Repair.DELETE_RECORD, "record:r1", operator.pk)
    assert done == "Deleted orphan record r1."
    note = ReconcileRun.objects.get().note
    assert note == "Delete the PocketBase record (record:r1): Deleted orphan record r1."


def test_the_scheduled_reconcile_runs_as_schedule(stub_remotes, make_stack):
    """No user: requested by "schedule"; returns the drift count."""
    make_stack("customer-123", "customer-123-main", status="running", coolify_service_uuid="s")
    assert tasks.reconcile_task() == 2  # missing service, missing record
    run = ReconcileRun.objects.get()
    assert run.requested_by_repr == "schedule"
    assert sorted(d["kind"] for d in run.drift) == ["missing_record", "missing_service"]


def test_a_reconcile_asked_for_in_the_admin_runs_as_the_user(stub_remotes, operator):
    """The user's pk becomes the run's requester."""
    assert tasks.reconcile_task(operator.pk) == 0
    assert ReconcileRun.objects.get().requested_by_repr == "operator"


def test_the_real_repair_refusal_reaches_the_note(stub_remotes, operator):
    """Unpatched repair(): a missing stack is refused and noted."""
    done = tasks.repair_drift_task(Repair.PUSH_RECORD, "stack:987654", operator.pk)
    assert done == "Not repaired: The stack is gone or deleted."
    assert ReconcileRun.objects.get().note.endswith("The stack is gone or deleted.")


# --- roles ---------------------------------------------------------------------------------------


def test_viewers_may_view_runs_but_not_reconcile(viewer):
    """Viewer: view_reconcilerun only."""
    assert viewer.has_perm("stacks.view_reconcilerun")
    assert not viewer.has_perm("stacks.reconcile_stacks")


def test_support_may_not_reconcile(support):
    """Support: can view, cannot reconcile."""
    assert support.has_perm("stacks.view_reconcilerun")
    assert not support.has_perm("stacks.reconcile_stacks")


@pytest.mark.parametrize("persona", ["operator", "admin_role"])
def test_operators_and_admins_may_reconcile(request, persona):
    """Operator and admin hold reconcile_stacks, but never add/change/delete of runs."""
    user = request.getfixturevalue(persona)
    assert user.has_perm("stacks.reconcile_stacks")
    assert user.has_perm("stacks.view_reconcilerun")
    assert not user.has_perm("stacks.delete_reconcilerun")


def test_a_repair_from_an_older_report_is_refused(as_user, operator, queued):
    """Only the latest report's repairs run: an older one may list what is already fixed."""
    old = make_run([STATUS_DRIFT], age_minutes=20)
    make_run([])
    response = as_user(operator).post(
        repair_url(old), {"repair": Repair.TAKE_COOLIFY_STATUS, "target": "stack:41"}
    )
    assert queued == []
    assert messages_of(response) == [
        "A newer report exists; repair from it (it shows what is still wrong)."
    ]


def test_a_comparison_in_progress_does_not_hide_the_last_report(as_user, operator, queued):
    """While a run compares, the page keeps the last finished report and its repairs."""
    finished = make_run([STATUS_DRIFT], age_minutes=15)
    make_run([], finished_at=None)  # started just now, not finished
    content = as_user(operator).get(LATEST).content.decode()
    assert f'data-run="{finished.pk}"' in content
    assert "1 drift found" in content and "In sync" not in content
    assert "A comparison is running now" in content
    as_user(operator).post(
        repair_url(finished), {"repair": Repair.TAKE_COOLIFY_STATUS, "target": "stack:41"}
    )
    assert queued == [
        ("stacks.tasks.repair_drift_task", Repair.TAKE_COOLIFY_STATUS, "stack:41", operator.pk)
    ]


def test_a_run_whose_worker_died_says_so(as_user, viewer):
    """Unfinished for longer than a comparison can take: not "In sync"."""
    lost = make_run([], age_minutes=30, finished_at=None)
    content = (
        as_user(viewer)
        .get(reverse("admin:stacks_reconcilerun_change", args=[lost.pk]))
        .content.decode()
    )
    assert "Did not finish (its worker stopped)" in content and "In sync" not in content


def test_the_ops_dashboard_summarises_the_latest_report(as_user, viewer):
    """The on-call page says whether cfadmin, Coolify and PocketBase agree, and links there."""
    dashboard = reverse("admin:ops_dashboard")
    assert "No comparison of cfadmin" in as_user(viewer).get(dashboard).content.decode()
    make_run([STATUS_DRIFT, ORPHAN_RECORD], age_minutes=5)
    make_run([], finished_at=None)  # still comparing: the finished report counts
    content = as_user(viewer).get(dashboard).content.decode()
    summary = content.split('id="cf-dashboard-reconcile">')[1].split("</p>")[0]
    assert "2 drift</strong> found 5\xa0minutes ago" in summary
    assert reverse("admin:stacks_reconcile") in summary
