"""Data recovery (issue 15) without remote services: the delete page's "keep volumes", the
compose that mounts kept volumes, redeploy refusals, the backup health check and the
incident's backup action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from cfadmin.models import AuditEvent
from ops.checks.backups import backup_age_result, parse_modified
from ops.health import run_checks
from ops.models import CheckStatus, IncidentEventKind
from stacks.choices import OperationKind, StackStatus
from stacks.compose import load_manifest, render_stack, volume_name
from stacks.compose.errors import RenderError
from stacks.compose.kept_mounts import kept_volume_path, mount_kept_volumes
from stacks.models import Operation
from stacks.models.kept_volumes import KeptVolumes
from stacks.provisioning.delete_steps import record_kept_volumes
from stacks.services.recovery import RecoveryRefused, redeploy_onto_kept, volumes_exist
from tests.unit.incident_helpers import events, login, make_incident

TENANT, STACK = "customer-123", "customer-123-main"
UUID = "oldsvc0000000000000000001"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CHANGELIST = reverse("admin:stacks_stack_changelist")


def deleted_with_kept_volumes(make_stack) -> KeptVolumes:
    stack = make_stack(
        TENANT,
        STACK,
        template_name="base-llm",
        domains={"webui": "llm.customer123.com"},
        secrets={},
        coolify_service_uuid=UUID,
        status=StackStatus.DELETING,
    )
    kept = record_kept_volumes(stack, UUID)
    stack.transition_to(StackStatus.DELETED)
    return kept


# --- the compose that mounts kept volumes ------------------------------------------------------


def test_kept_volumes_are_mounted_by_data_directory_and_nothing_else_changes():
    manifest = load_manifest("base-llm")
    rendered = render_stack(manifest, tenant=TENANT, stack_name=STACK)
    compose_names = {p: volume_name(TENANT, STACK, p) for p in ("models", "webui")}
    kept = {"models": f"{UUID}_cf-agent-{TENANT}-{STACK}-models"}

    onto = mount_kept_volumes(rendered, kept, compose_names)

    llm = onto.compose["services"][f"cf-agent-{TENANT}-{STACK}"]
    assert llm["volumes"] == [f"/var/lib/docker/volumes/{kept['models']}/_data:/root/.ollama"]
    assert list(onto.compose["volumes"]) == [compose_names["webui"]]  # still a new volume
    assert onto.findings == []  # only the kept path's own finding is allowed
    assert onto.compose["services"].keys() == rendered.compose["services"].keys()


def test_a_name_that_is_not_a_coolify_volume_is_refused():
    with pytest.raises(RenderError):
        kept_volume_path("../../etc")
    with pytest.raises(RenderError):
        kept_volume_path("x_a b")


# --- the delete page ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_delete_page_offers_keeping_the_volumes_and_queues_a_keeping_delete(
    client, admin_role, make_stack, django_capture_on_commit_callbacks
):
    stack = make_stack(TENANT, STACK, status=StackStatus.RUNNING, coolify_service_uuid=UUID)
    login(client, admin_role)
    form = {"action": "delete_stacks", "_selected_action": [stack.pk], "index": "0"}

    page = client.post(CHANGELIST, form).content.decode()
    assert 'name="keep_volumes"' in page and "Keep the volumes (data can be recovered)" in page

    with django_capture_on_commit_callbacks(execute=False):
        client.post(
            CHANGELIST,
            {**form, "post": "yes", f"confirm_{stack.pk}": str(stack), "keep_volumes": "on"},
        )
    [operation] = Operation.objects.filter(stack=stack)
    assert operation.kind == OperationKind.DELETE
    assert operation.parameters == {"keep_volumes": True}


@pytest.mark.django_db
def test_an_ordinary_delete_does_not_keep_volumes(
    client, admin_role, make_stack, django_capture_on_commit_callbacks
):
    stack = make_stack(TENANT, STACK, status=StackStatus.RUNNING, coolify_service_uuid=UUID)
    login(client, admin_role)
    with django_capture_on_commit_callbacks(execute=False):
        client.post(
            CHANGELIST,
            {
                "action": "delete_stacks",
                "_selected_action": [stack.pk],
                "index": "0",
                "post": "yes",
                f"confirm_{stack.pk}": str(stack),
            },
        )
    assert Operation.objects.get(stack=stack).parameters == {}


# --- redeploy onto kept volumes ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_redeploy_copies_the_stack_and_reserves_the_volumes(
    make_stack, operator, django_capture_on_commit_callbacks
):
    kept = deleted_with_kept_volumes(make_stack)
    old = kept.stack
    assert kept.volumes == old.server_names().volumes
    assert set(kept.by_purpose()) == {"models", "webui"}
    assert volumes_exist(old) == (None, volumes_exist(old)[1])
    assert volumes_exist(old)[1]["volumes"] == kept.volumes

    with django_capture_on_commit_callbacks(execute=False):
        operation = redeploy_onto_kept(kept, actor=operator)

    new = operation.stack
    assert (new.tenant, new.stack_name, new.template_name) == (old.tenant, STACK, "base-llm")
    assert new.status == StackStatus.PENDING and new.pk != old.pk
    assert list(new.domains.values_list("domain", flat=True)) == ["llm.customer123.com"]
    assert operation.parameters["kept_volumes_id"] == kept.pk
    kept.refresh_from_db()
    assert kept.reused_by == new
    with pytest.raises(RecoveryRefused, match="already"):
        redeploy_onto_kept(kept, actor=operator)


@pytest.mark.django_db
def test_a_redeploy_is_refused_while_a_live_stack_has_the_name(make_stack, operator):
    kept = deleted_with_kept_volumes(make_stack)
    make_stack(TENANT, STACK, template_name="base-llm", domains={}, secrets={})

    with pytest.raises(RecoveryRefused, match="live stack"):
        redeploy_onto_kept(kept, actor=operator)
    assert KeptVolumes.objects.get(pk=kept.pk).reused_by is None


# --- the backup health check -------------------------------------------------------------------


def listing(*ages_hours: float) -> list[dict]:
    return [
        {
            "key": f"b{i}.zip",
            "size": 10,
            "modified": (NOW - timedelta(hours=h)).strftime("%Y-%m-%d %H:%M:%S.000Z"),
        }
        for i, h in enumerate(ages_hours)
    ]


def test_the_backup_check_warns_when_the_newest_backup_is_too_old():
    status, message, details = backup_age_result(listing(30, 27), now=NOW, max_age_hours=26)
    assert status == CheckStatus.WARNING and "more than 26 h" in message
    assert details["newest"] == "b1.zip" and details["age_hours"] == 27.0


def test_the_backup_check_is_ok_with_a_recent_backup_and_warns_with_none():
    assert backup_age_result(listing(30, 2), now=NOW, max_age_hours=26)[0] == CheckStatus.OK
    assert backup_age_result([], now=NOW, max_age_hours=26)[0] == CheckStatus.WARNING
    assert parse_modified("2023-05-19 16:25:57.542Z") == datetime(
        2023, 5, 19, 16, 25, 57, 542000, tzinfo=UTC
    )


@pytest.mark.django_db
def test_the_backup_check_warns_when_pocketbase_cannot_be_asked(settings, closed_port):
    """PocketBase down is the "pocketbase" check's outage; this one only warns it cannot tell."""
    settings.POCKETBASE_URL = f"http://127.0.0.1:{closed_port}"
    settings.POCKETBASE_EMAIL, settings.POCKETBASE_PASSWORD = "a@example.com", "pw"
    settings.HEALTHCHECK_TIMEOUT = 1.0
    [outcome] = run_checks(["pocketbase_backup"])
    assert outcome.status == CheckStatus.WARNING
    assert outcome.message.startswith("Cannot list PocketBase's backups")


# --- the incident's backup action --------------------------------------------------------------


@pytest.mark.django_db
def test_an_operator_takes_a_backup_from_the_incident(
    client, operator, support, django_capture_on_commit_callbacks
):
    incident = make_incident(actor=operator)
    change = reverse("admin:ops_incident_change", args=[incident.pk])
    work = reverse("admin:ops_incident_work", args=[incident.pk, "recovery_backup"])
    login(client, support)
    assert "cf-incident-recovery-backup-form" not in client.get(change).content.decode()
    assert client.post(work).status_code in (302, 403)
    assert not events(incident, IncidentEventKind.RECOVERY)

    client.logout()
    login(client, operator)
    assert "cf-incident-recovery-backup-form" in client.get(change).content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(work)

    assert response.status_code == 302
    assert response.url == reverse("admin:ops_incident_recovery_backups", args=[incident.pk])
    [line] = events(incident, IncidentEventKind.RECOVERY)
    assert line.startswith("PocketBase backup cfadmin_incident") and line.endswith(" requested")
    assert len(callbacks) == 1  # the job, after the commit
    assert AuditEvent.objects.filter(message__startswith="PocketBase backup").exists()
    page = client.get(response.url).content.decode()
    assert "Not listed yet" in page


@pytest.mark.django_db
def test_the_deleted_stacks_page_offers_the_redeploy_and_its_button_works(
    client, operator, viewer, make_stack, django_capture_on_commit_callbacks
):
    kept = deleted_with_kept_volumes(make_stack)
    page_url = reverse("admin:stacks_stack_change", args=[kept.stack.pk])
    login(client, viewer)
    assert "redeploy_onto_kept_volumes" not in client.get(page_url).content.decode()
    client.logout()
    login(client, operator)
    assert "Redeploy onto kept volumes (2)" in client.get(page_url).content.decode()

    with django_capture_on_commit_callbacks(execute=False):
        client.post(
            CHANGELIST,
            {
                "action": "redeploy_onto_kept_volumes",
                "_selected_action": [kept.stack.pk],
                "index": "0",
            },
        )

    kept.refresh_from_db()
    assert kept.reused_by is not None and kept.reused_by.status == StackStatus.PENDING
    assert kept.reused_by.operations.get().kind == OperationKind.DEPLOY
    assert "Redeploy onto kept volumes" not in client.get(page_url).content.decode()


def test_the_simulator_renames_external_volumes_but_binds_kept_data_directories():
    """parsers.php serviceParser: every named-volume mount becomes `<uuid>_<slug>`, whatever
    the top level says (external, name:); an absolute bind source is left alone."""
    from stacks.coolify_simulator import parser

    kept = f"{UUID}_cf-agent-{TENANT}-{STACK}-models"
    compose = (
        "services:\n  app:\n    image: nginx:1.27\n    volumes:\n"
        "      - old:/a\n"
        f"      - /var/lib/docker/volumes/{kept}/_data:/b\n"
        "volumes:\n  old:\n    external: true\n    name: old\n"
    )

    parsed = parser.parse(compose, "newsvc000000000000000001")

    assert parsed.volumes == ["newsvc000000000000000001_old"]
    assert parsed.subs["app"].bound_volumes == [kept]


@pytest.mark.django_db
def test_the_deleted_stacks_page_lists_its_kept_volumes(client, viewer, make_stack):
    kept = deleted_with_kept_volumes(make_stack)
    login(client, viewer)

    page = client.get(reverse("admin:stacks_stack_change", args=[kept.stack.pk])).content.decode()

    assert "Volumes kept by the delete" in page
    for name in kept.volumes:
        assert name in page
