"""Evidence on an incident (issue 15 point 2): the capture (hashes, no secrets, failed parts),
immutability through the ORM and the admin, the automatic capture after an isolate, the
permissions, and the item, download and export pages."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.db.models import ProtectedError
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from cfadmin import audit, jobs
from cfadmin.models import AuditAction, AuditEvent
from ops.models import IncidentEvent, IncidentEventKind
from ops.models.evidence import EvidenceImmutable, EvidenceItem, EvidenceKind, content_sha256
from ops.response import evidence, evidence_capture
from stacks.choices import OperationKind, OperationStatus
from stacks.clients.coolify import MissingAbility
from stacks.clients.errors import ConnectionFailed
from stacks.models import Operation
from tests.unit.incident_helpers import events, login, make_incident, page, work_url

CANARY = "sk-canary-7f3e9a1b2c4d5e6f"
TOKEN_CANARY = "tg-canary-000111222333"
UUID = "svc0123456789abcdefghijk"


class FakeCoolify:
    """GET /services/{uuid}, its envs and its logs, as Coolify answers them (values included,
    as for a token with read:sensitive), or failing as told."""

    def __init__(self, *, compose: bool = True, fail: dict[str, Exception] | None = None):
        self.compose = compose
        self.fail = fail or {}
        self.log_calls: list[tuple[str, str, int]] = []

    def _check(self, method: str) -> None:
        if method in self.fail:
            raise self.fail[method]

    def get_service(self, uuid: str) -> dict[str, Any]:
        self._check("get_service")
        service = {
            "uuid": uuid,
            "name": "customer-123-main",
            "status": "running:healthy",
            "server_status": True,
            "applications": [{"name": "webui", "status": "running:healthy", "image": "x:1"}],
            "databases": [{"name": "db", "status": "running:healthy"}],
        }
        if self.compose:
            service["docker_compose_raw"] = f"services:\n  webui:\n    environment: [K={CANARY}]\n"
        return service

    def list_service_envs(self, uuid: str) -> list[dict[str, Any]]:
        self._check("list_service_envs")
        return [
            {"key": "ANTHROPIC_API_KEY", "value": CANARY, "real_value": CANARY},
            {"key": "TELEGRAM_BOT_TOKEN", "value": TOKEN_CANARY, "real_value": TOKEN_CANARY},
        ]

    def service_logs(self, uuid: str, sub_service: str, *, lines: int = 100) -> str:
        self._check("service_logs")
        self.log_calls.append((uuid, sub_service, lines))
        return f"{sub_service} started\nusing key {CANARY} and {TOKEN_CANARY}\n<b>ok</b>\n"


@pytest.fixture
def stack(make_stack):
    return make_stack(
        coolify_service_uuid=UUID,
        secrets={"ANTHROPIC_API_KEY": CANARY, "TELEGRAM_BOT_TOKEN": TOKEN_CANARY},
    )


@pytest.fixture
def incident(stack, support):
    incident = make_incident(support, title="Key leaked")
    incident.stacks.add(stack)
    return incident


@pytest.fixture
def queued(monkeypatch):
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(jobs, "enqueue", lambda func, *args, **options: calls.append((func, args)))
    return calls


def capture(incident, stack, coolify=None, actor=None) -> list[EvidenceItem]:
    evidence_capture.capture_job(
        incident.pk, [stack.pk], getattr(actor, "pk", None), "system", coolify=coolify
    )
    return list(EvidenceItem.objects.filter(incident=incident).order_by("id"))


# --- the capture ------------------------------------------------------------------------------


def test_a_capture_stores_each_part_with_the_hash_of_its_content(
    incident, stack, support, settings
):
    settings.EVIDENCE_LOG_LINES = 37
    coolify = FakeCoolify()

    items = capture(incident, stack, coolify, support)

    assert [item.kind for item in items] == [
        EvidenceKind.SERVICE,
        EvidenceKind.ENV_KEYS,
        EvidenceKind.LOGS,
        EvidenceKind.LOGS,
        EvidenceKind.AUDIT,
        EvidenceKind.TEMPLATE,
        EvidenceKind.OPERATIONS,
    ]
    for item in items:
        assert item.sha256 == hashlib.sha256(item.content.encode("utf-8")).hexdigest()
        assert item.captured_by == support and item.captured_by_repr == "support"
        assert item.stack == stack and not item.failed
    assert coolify.log_calls == [(UUID, "webui", 37), (UUID, "db", 37)]
    by_kind = {item.kind: item.content for item in items}
    assert by_kind[EvidenceKind.ENV_KEYS] == "ANTHROPIC_API_KEY\nTELEGRAM_BOT_TOKEN\n"
    assert '"status": "running:healthy"' in by_kind[EvidenceKind.SERVICE]
    assert "# compose (docker_compose_raw)" in by_kind[EvidenceKind.SERVICE]
    assert "template: openclaw-agent" in by_kind[EvidenceKind.TEMPLATE]
    assert (
        "using key [secret ANTHROPIC_API_KEY] and [secret TELEGRAM_BOT_TOKEN]" in items[2].content
    )


def test_no_env_value_or_secret_enters_any_item(incident, stack, support):
    items = capture(incident, stack, FakeCoolify(), support)

    stored = " ".join(EvidenceItem.objects.values_list("content", flat=True))
    assert items and CANARY not in stored and TOKEN_CANARY not in stored
    assert CANARY not in " ".join(AuditEvent.objects.values_list("message", flat=True))
    assert CANARY not in " ".join(events(incident))


def test_a_part_that_fails_becomes_an_item_saying_what_failed(incident, stack):
    coolify = FakeCoolify(
        fail={
            "get_service": ConnectionFailed("connection refused", service="Coolify"),
            "list_service_envs": MissingAbility(
                "Missing required permissions: read", service="Coolify", status=403
            ),
        }
    )

    items = capture(incident, stack, coolify)

    failed = {item.kind: item for item in items if item.failed}
    assert set(failed) == {EvidenceKind.SERVICE, EvidenceKind.ENV_KEYS, EvidenceKind.LOGS}
    assert "connection refused" in failed[EvidenceKind.SERVICE].content
    assert "HTTP 403: Missing required permissions: read" in failed[EvidenceKind.ENV_KEYS].content
    assert "service could not be read" in failed[EvidenceKind.LOGS].content
    assert all(item.hash_matches for item in items)
    [line] = events(incident, IncidentEventKind.EVIDENCE)
    assert line.startswith("Evidence captured for customer-123-main: 6 items (3 failed: ")


def test_without_read_sensitive_the_compose_is_said_to_be_unreadable(incident, stack):
    [service] = [
        i for i in capture(incident, stack, FakeCoolify(compose=False)) if i.kind == "service"
    ]
    assert "compose: not readable (the token lacks read:sensitive)" in service.content


def test_a_stack_never_deployed_says_it_has_no_service(incident, stack):
    type(stack).objects.filter(pk=stack.pk).update(coolify_service_uuid="")
    items = capture(incident, stack, FakeCoolify())
    assert "has no Coolify service" in items[0].content and items[0].failed


def test_the_audit_slice_and_operations_cover_the_last_seven_days(incident, stack, operator):
    audit.record(actor=operator, action=AuditAction.UPDATE, target=stack, message="recent change")
    old = audit.record(actor=operator, action=AuditAction.UPDATE, target=stack, message="old one")
    AuditEvent.objects.filter(pk=old.pk).update(occurred_at=timezone.now() - timedelta(days=8))
    recent = Operation.objects.create(
        stack=stack, kind=OperationKind.STOP, status=OperationStatus.FAILED,
        requested_by=operator, requested_by_repr="operator", error="Coolify said no",
    )  # fmt: skip
    stale = Operation.objects.create(
        stack=stack, kind=OperationKind.RESTART, status=OperationStatus.SUCCEEDED,
        requested_by_repr="operator",
    )  # fmt: skip
    Operation.objects.filter(pk=stale.pk).update(requested_at=timezone.now() - timedelta(days=8))

    items = {item.kind: item.content for item in capture(incident, stack, FakeCoolify())}

    assert "recent change" in items[EvidenceKind.AUDIT]
    assert "old one" not in items[EvidenceKind.AUDIT]
    assert f"#{recent.pk}\tstop\tfailed\toperator\t" in items[EvidenceKind.OPERATIONS]
    assert "Coolify said no" in items[EvidenceKind.OPERATIONS]
    assert f"#{stale.pk}\t" not in items[EvidenceKind.OPERATIONS]


# --- immutability -----------------------------------------------------------------------------


@pytest.fixture
def item(incident, stack, support):
    return EvidenceItem.objects.create(
        incident=incident, stack=stack, kind=EvidenceKind.TEMPLATE, title="t", content="original",
        captured_by=support, captured_by_repr="support",
    )  # fmt: skip


def test_an_item_cannot_be_changed_or_deleted_through_the_orm(item, incident):
    item.content = "tampered"
    with pytest.raises(EvidenceImmutable):
        item.save()
    with pytest.raises(EvidenceImmutable):
        item.delete()
    with pytest.raises(EvidenceImmutable):
        EvidenceItem.objects.filter(pk=item.pk).update(content="tampered")
    with pytest.raises(EvidenceImmutable):
        EvidenceItem.objects.filter(pk=item.pk).delete()
    with pytest.raises(EvidenceImmutable):
        EvidenceItem.objects.bulk_update([item], ["content"])
    with pytest.raises(EvidenceImmutable):
        EvidenceItem.objects.all().delete()
    with pytest.raises(ProtectedError):
        incident.delete()
    with pytest.raises(EvidenceImmutable):  # the base manager Django's related updates use
        EvidenceItem._base_manager.filter(pk=item.pk).update(content="tampered")
    stored = EvidenceItem.objects.get(pk=item.pk)
    assert stored.content == "original" and stored.hash_matches


def test_bulk_created_items_get_their_hash(incident):
    [made] = EvidenceItem.objects.bulk_create(
        [
            EvidenceItem(
                incident=incident, kind="audit", title="a", content="é", captured_by_repr="x"
            )
        ]
    )
    assert made.sha256 == content_sha256("é")


def test_the_admin_offers_no_add_change_or_delete(item, client, superuser):
    assert EvidenceItem not in admin.site._registry
    for name, args in (
        ("admin:ops_evidenceitem_add", []),
        ("admin:ops_evidenceitem_change", [item.pk]),
        ("admin:ops_evidenceitem_delete", [item.pk]),
    ):
        with pytest.raises(NoReverseMatch):
            reverse(name, args=args)
    client.force_login(superuser)
    for url in (
        "/admin/ops/evidenceitem/add/",
        f"/admin/ops/evidenceitem/{item.pk}/change/",
        f"/admin/ops/evidenceitem/{item.pk}/delete/",
    ):
        assert client.get(url).status_code == 404
        assert client.post(url, {"content": "x", "post": "yes"}).status_code == 404
    assert EvidenceItem.objects.get(pk=item.pk).content == "original"


# --- requests: the form, permissions, the automatic capture -------------------------------


def test_support_captures_from_the_incident_page(client, support, incident, stack, queued):
    login(client, support)
    assert "cf-incident-evidence-form" in page(client.get(incident_url(incident)))

    response = client.post(work_url(incident, evidence.CAPTURE), {"stacks": [str(stack.pk)]})

    assert response.status_code == 302
    [(job, (incident_id, stack_ids, actor_id, label, requested_at))] = queued
    assert requested_at == IncidentEvent.objects.get(incident=incident).at.isoformat()
    assert (job, incident_id, stack_ids, actor_id, label) == (
        evidence_capture.JOB, incident.pk, [stack.pk], support.pk, "support"
    )  # fmt: skip

    assert evidence_capture.capture_job(*queued[0][1], coolify=FakeCoolify()) == 7
    # Delivered again (at least once): nothing captured twice.
    assert evidence_capture.capture_job(*queued[0][1], coolify=FakeCoolify()) == 0
    assert EvidenceItem.objects.filter(incident=incident).count() == 7
    assert events(incident, IncidentEventKind.EVIDENCE) == [
        "Evidence capture requested: customer-123-main.",
        "Evidence captured for customer-123-main: 7 items.",
    ]
    assert AuditEvent.objects.filter(message__startswith="Evidence capture requested").exists()
    assert AuditEvent.objects.get(message__startswith="Evidence captured").stack_name == (
        "customer-123-main"
    )


def test_only_linked_stacks_can_be_chosen(client, support, incident, make_stack, queued):
    other = make_stack("customer-9")
    login(client, support)
    client.post(work_url(incident, evidence.CAPTURE), {"stacks": [str(other.pk)]})
    assert queued == []


def test_a_viewer_cannot_capture(client, viewer, incident, stack, queued):
    login(client, viewer)
    assert "cf-incident-evidence-form" not in page(client.get(incident_url(incident)))

    response = client.post(work_url(incident, evidence.CAPTURE), {"stacks": [str(stack.pk)]})

    assert response.status_code == 403 and queued == []


def isolate(stack, incident_id: Any, status=OperationStatus.SUCCEEDED, kind="isolate"):
    return Operation.objects.create(
        stack=stack, kind=kind, status=status, requested_by_repr="operator",
        parameters={"incident_id": incident_id},
    )  # fmt: skip


def test_a_successful_isolate_from_an_incident_captures_the_stack(incident, stack, queued):
    operation = isolate(stack, incident.pk)

    evidence.capture_after_isolation(operation)

    label = f"system (after isolate #{operation.pk})"
    [(job, args)] = queued
    assert (job, args[:4]) == (evidence_capture.JOB, (incident.pk, [stack.pk], None, label))
    assert events(incident, IncidentEventKind.EVIDENCE) == [
        "Evidence capture requested: customer-123-main."
    ]


def test_other_operations_capture_nothing(incident, stack, queued):
    evidence.capture_after_isolation(isolate(stack, incident.pk, kind=OperationKind.STOP))
    Operation.objects.all().update(status=OperationStatus.CANCELLED)
    evidence.capture_after_isolation(isolate(stack, None))
    Operation.objects.all().update(status=OperationStatus.CANCELLED)
    evidence.capture_after_isolation(isolate(stack, incident.pk, status=OperationStatus.FAILED))
    assert queued == []


def test_before_an_isolate_stops_the_stack_its_logs_are_captured_at_once(
    incident, stack, monkeypatch
):
    monkeypatch.setattr(evidence_capture, "settings_coolify", lambda **options: FakeCoolify())
    evidence.capture_before_isolation(isolate(stack, incident.pk, kind=OperationKind.STOP))
    assert not EvidenceItem.objects.exists()
    operation = isolate(stack, incident.pk, status=OperationStatus.RUNNING)

    evidence.capture_before_isolation(operation)

    items = EvidenceItem.objects.filter(incident=incident)
    assert sorted(items.values_list("kind", flat=True)) == ["logs", "logs", "service"]
    assert {item.captured_by_repr for item in items} == {f"system (before isolate #{operation.pk})"}
    assert CANARY not in " ".join(item.content for item in items)


# --- pages ------------------------------------------------------------------------------------


def incident_url(incident) -> str:
    return reverse("admin:ops_incident_change", args=[incident.pk])


def test_the_item_page_shows_the_content_escaped_and_the_hash_check(client, viewer, incident):
    item = EvidenceItem.objects.create(
        incident=incident, kind="logs", title="logs", content="<script>x</script>",
        captured_by_repr="system",
    )  # fmt: skip
    login(client, viewer)
    assert "cf-evidence-items" in page(client.get(incident_url(incident)))

    html = client.get(reverse("admin:ops_incident_evidence_item", args=[incident.pk, item.pk]))

    body = html.content.decode()
    assert "&lt;script&gt;x&lt;/script&gt;" in body and "<script>x" not in body
    assert item.sha256 in body and "The stored hash matches the content." in body


def test_the_download_is_the_stored_content(client, viewer, incident, stack):
    items = capture(incident, stack, FakeCoolify())
    login(client, viewer)

    for item in items:
        url = reverse("admin:ops_incident_evidence_download", args=[incident.pk, item.pk])
        response = client.get(url)
        assert response["Content-Type"].startswith("text/plain")
        assert response["Content-Disposition"].startswith("attachment;")
        assert response.content.decode("utf-8") == item.content
        assert content_sha256(response.content.decode("utf-8")) == item.sha256

    exported = client.get(reverse("admin:ops_incident_evidence_export", args=[incident.pk]))
    document = json.loads(exported.content)
    assert [(i["id"], i["content"], i["sha256"]) for i in document["items"]] == [
        (i.pk, i.content, i.sha256) for i in items
    ]


def test_an_item_of_another_incident_is_not_found(client, viewer, incident, item, support):
    other = make_incident(support, title="Other")
    login(client, viewer)
    url = reverse("admin:ops_incident_evidence_download", args=[other.pk, item.pk])
    assert client.get(url).status_code == 404
