"""The stack admin's operations through Django's test client: who sees which action, what each
one queues (and when nothing is queued), the deploy page's dry-run → Deploy, the progress
fragment, the tenant's stack list, the read-only Operation admin and the audit filters.

Nothing runs remotely here: operations are queued and their on-commit callbacks counted.
Every page is checked as raw bytes for the secret values.
"""

from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cfadmin.models import AuditAction, AuditEvent
from cfadmin.roles import sync_roles
from stacks.admin import StackAdmin
from stacks.choices import OperationKind, OperationStatus, StackStatus, StepOutcome
from stacks.compose import load_manifest
from stacks.models import Operation, OperationStep, Stack, StackSecret
from stacks.previews import PREVIEW_LIFETIME, PREVIEWS_SESSION_KEY
from stacks.services import request_operation, tenant_stack_listing
from tenants.models import Tenant
from tests.conftest import PASSWORD

TENANT = "customer-123"
STACK = "customer-123-main"
DOMAIN = "demo.customer123.com"
ANTHROPIC_KEY = "sk-test-admin-ops-" + "Zx9Yw8Vu7Ts6" * 2 + "q1w2"
TELEGRAM_TOKEN = "123456789:test-admin-ops-telegram-token"
NEW_ANTHROPIC_KEY = "sk-test-rotated-" + "Mn5Bv4Cx3Za2" * 2 + "p0o9"
SECRETS = (ANTHROPIC_KEY, TELEGRAM_TOKEN, NEW_ANTHROPIC_KEY)

CHANGELIST = reverse("admin:stacks_stack_changelist")
DEPLOY = reverse("admin:stacks_stack_deploy")
AUDIT = reverse("admin:cfadmin_auditevent_changelist")

ALL_ACTIONS = {
    "restart_stacks",
    "stop_stacks",
    "start_stacks",
    "redeploy_stacks",
    "rotate_secrets",
    "retry_failed",
    "isolate_stacks",
    "release_stacks",
    "delete_stacks",
}
OPERATOR_ACTIONS = ALL_ACTIONS - {"delete_stacks"}


# --- helpers ----------------------------------------------------------------------------------


def login(client: Client, user: User) -> Client:
    # django-axes needs the request (HttpRequest(): the test client has none to give).
    assert client.login(request=HttpRequest(), username=user.username, password=PASSWORD)
    return client


def html(response) -> str:
    text = response.content.decode()
    for secret in SECRETS:
        assert secret not in text, f"a secret value is in {response.wsgi_request.path}"
    return text


def action_options(response) -> set[str]:
    """The actions offered in the changelist's action dropdown."""
    page = html(response)
    match = re.search(r'<select name="action"[^>]*>(.*?)</select>', page, re.S)
    if match is None:
        return set()
    return set(re.findall(r'<option value="([^"]+)"', match.group(1)))


def page_buttons(response) -> list[str]:
    """The operation buttons on a stack's page, in order."""
    page = html(response)
    match = re.search(r'<form[^>]*id="cf-stack-actions".*?</form>', page, re.S)
    if match is None:
        return []
    return re.findall(r'<button type="submit" name="action" value="([^"]+)"', match.group(0))


def messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def plain(message: str) -> str:
    """A message as the person reads it: tags dropped, entities decoded."""
    return unescape(re.sub(r"<[^>]+>", "", message))


class _MainFormInputs(HTMLParser):
    """The inputs and selects a browser would submit from the admin's change form."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.data: dict[str, str] = {}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id", "").endswith("_form"):
            self.inside = True
        name = a.get("name", "")
        if not self.inside or not name or "__prefix__" in name:
            return
        if tag == "input" and a.get("type", "text") not in ("submit", "button", "checkbox"):
            self.data[name] = a.get("value", "")
        elif tag == "select":
            self._select = name
            self.data[name] = ""
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None


def change_form_data(response) -> dict[str, str]:
    parser = _MainFormInputs()
    parser.feed(html(response))
    return parser.data


def run_action(client: Client, action: str, stacks: list[Stack], **data: Any):
    return client.post(
        CHANGELIST,
        {
            "action": action,
            "_selected_action": [stack.pk for stack in stacks],
            "index": "0",
            "select_across": "0",
            **data,
        },
        follow=True,
    )


def runbook_stack(make_stack, tenant: str = TENANT, stack_name: str = STACK, **fields) -> Stack:
    fields.setdefault("status", StackStatus.RUNNING)
    fields.setdefault("domains", {"webui": DOMAIN})
    fields.setdefault(
        "secrets", {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN}
    )
    return make_stack(tenant, stack_name, **fields)


def in_flight(stack: Stack, kind: str = OperationKind.RESTART) -> Operation:
    return Operation.objects.create(
        stack=stack, kind=kind, status=OperationStatus.RUNNING, requested_by_repr="someone"
    )


def finished(stack: Stack, kind: str, status: str, **fields) -> Operation:
    return Operation.objects.create(
        stack=stack, kind=kind, status=status, requested_by_repr="someone", **fields
    )


# --- permissions: who sees what ---------------------------------------------------------------


def test_syncing_roles_leaves_the_app_registry_as_it_was(db):
    """The persona fixtures call sync_roles(django.apps.apps) after a flush. It sets every
    AppConfig.models_module to None, so the next flush skips post_migrate (no content types
    recreated, a stale ContentType cache) and later transactional tests fail at commit."""
    before = {config.label: config.models_module for config in django_apps.get_app_configs()}
    try:
        sync_roles(django_apps)
        after = {config.label: config.models_module for config in django_apps.get_app_configs()}
    finally:
        for config in django_apps.get_app_configs():
            config.models_module = before[config.label]

    assert after == before


def test_every_stack_action_declares_its_permission():
    for name in StackAdmin.actions:
        assert getattr(StackAdmin, name).allowed_permissions, name


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("viewer", set()),
        ("support", set()),
        ("operator", OPERATOR_ACTIONS),
        ("admin_role", ALL_ACTIONS),
        ("superuser", ALL_ACTIONS),
    ],
)
def test_changelist_action_dropdown_per_persona(request, client, make_stack, persona, expected):
    runbook_stack(make_stack)
    login(client, request.getfixturevalue(persona))

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert action_options(response) == expected
    assert "delete_selected" not in html(response)  # a row delete would orphan the service


@pytest.mark.parametrize(
    ("persona", "running", "stopped"),
    [
        ("viewer", [], []),
        ("support", [], []),
        (
            "operator",
            [
                "restart_stacks",
                "stop_stacks",
                "redeploy_stacks",
                "rotate_secrets",
                "isolate_stacks",
            ],
            ["start_stacks", "redeploy_stacks", "rotate_secrets", "isolate_stacks"],
        ),
        (
            "admin_role",
            [
                "restart_stacks",
                "stop_stacks",
                "redeploy_stacks",
                "rotate_secrets",
                "isolate_stacks",
                "delete_stacks",
            ],
            [
                "start_stacks",
                "redeploy_stacks",
                "rotate_secrets",
                "isolate_stacks",
                "delete_stacks",
            ],
        ),
    ],
)
def test_stack_page_buttons_per_persona(request, client, make_stack, persona, running, stopped):
    running_stack = runbook_stack(make_stack)
    stopped_stack = runbook_stack(
        make_stack,
        stack_name="customer-123-second",
        status=StackStatus.STOPPED,
        domains={"webui": "second.customer123.com"},
    )
    login(client, request.getfixturevalue(persona))

    def buttons(stack: Stack) -> list[str]:
        response = client.get(reverse("admin:stacks_stack_change", args=[stack.pk]))
        assert response.status_code == 200
        return page_buttons(response)

    assert buttons(running_stack) == running
    assert buttons(stopped_stack) == stopped


@pytest.mark.parametrize(("persona", "offered"), [("support", False), ("operator", True)])
def test_a_failed_operation_offers_retry_to_deployers_only(
    request, client, make_stack, persona, offered
):
    stack = runbook_stack(make_stack, status=StackStatus.ERROR)
    finished(stack, OperationKind.DEPLOY, OperationStatus.FAILED, error="boom")
    login(client, request.getfixturevalue(persona))

    response = client.get(reverse("admin:stacks_stack_change", args=[stack.pk]))

    assert ("retry_failed" in page_buttons(response)) is offered
    assert ("Retry failed deploy" in html(response)) is offered


def test_the_row_delete_view_is_refused_even_to_the_admin_role(client, admin_role, make_stack):
    stack = runbook_stack(make_stack)
    login(client, admin_role)

    url = reverse("admin:stacks_stack_delete", args=[stack.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Stack.objects.filter(pk=stack.pk).exists()
    assert not Operation.objects.exists()


# --- bulk actions: queued and skipped ----------------------------------------------------------


def test_restart_of_three_stacks_reports_queued_and_skipped(
    client, operator, make_stack, django_capture_on_commit_callbacks
):
    stacks = [
        runbook_stack(make_stack, f"customer-{n}", f"customer-{n}-main", domains={}, secrets={})
        for n in (1, 2, 3)
    ]
    busy = in_flight(stacks[2], OperationKind.REDEPLOY)
    login(client, operator)

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(client, "restart_stacks", stacks, post="yes")

    assert len(callbacks) == 2
    new = Operation.objects.exclude(pk=busy.pk)
    assert new.count() == 2
    assert {(o.stack_id, o.kind, o.status) for o in new} == {
        (stacks[0].pk, OperationKind.RESTART, OperationStatus.QUEUED),
        (stacks[1].pk, OperationKind.RESTART, OperationStatus.QUEUED),
    }
    assert all(o.requested_by == operator for o in new)
    [message] = messages(response)
    assert message.startswith(
        "Queued 2 restarts; skipped 1: customer-3/customer-3-main already has an operation "
        "queued or running; "
    )
    assert plain(message).endswith(
        "(a queued one that no worker takes can be cancelled on the "
        "stack's page). Follow them in Operations."
    )
    assert "Follow them in Operations" in html(response)


def test_a_stack_that_does_not_accept_the_action_is_skipped_with_the_reason(
    client, operator, make_stack, django_capture_on_commit_callbacks
):
    running = runbook_stack(make_stack)
    stopped = runbook_stack(
        make_stack, "customer-9", "customer-9-main", status=StackStatus.STOPPED, domains={}
    )
    login(client, operator)

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(client, "stop_stacks", [running, stopped], post="yes")

    assert len(callbacks) == 1
    assert Operation.objects.get().stack == running
    [message] = messages(response)
    assert plain(message) == (
        "Queued 1 stop; skipped 1: customer-9/customer-9-main is stopped, so stop is not "
        "possible. Follow it in Operations."
    )


def test_nothing_queued_when_every_stack_is_skipped(client, operator, make_stack):
    stack = runbook_stack(make_stack, status=StackStatus.STOPPED)
    login(client, operator)

    response = run_action(client, "restart_stacks", [stack], post="yes")

    assert not Operation.objects.exists()
    [message] = messages(response)
    assert message == (
        "No restart queued; skipped 1: customer-123/customer-123-main is stopped, so restart "
        "is not possible."
    )
    assert ".." not in message and "Follow" not in message
    assert 'class="error"' in html(response)


# --- delete: typed confirmation ---------------------------------------------------------------


@pytest.fixture
def two_deployed(make_stack) -> list[Stack]:
    first = runbook_stack(
        make_stack,
        coolify_project_uuid="proj0000000000000000000001",
        coolify_service_uuid="svc00000000000000000000001",
        pocketbase_id="pbrecord0000001",
    )
    second = runbook_stack(
        make_stack,
        "customer-456",
        "customer-456-main",
        domains={"webui": "agent.customer456.com"},
        coolify_service_uuid="svc00000000000000000000002",
        pocketbase_id="pbrecord0000002",
    )
    return [first, second]


def test_delete_confirmation_lists_what_goes_and_queues_nothing(
    client, admin_role, two_deployed, django_capture_on_commit_callbacks
):
    login(client, admin_role)

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(client, "delete_stacks", two_deployed)

    assert response.status_code == 200
    assert response.templates[0].name == "admin/stacks/stack/confirm_delete.html"
    page = html(response)
    for tenant, stack, domain, service, record in (
        (TENANT, STACK, DOMAIN, "svc00000000000000000000001", "pbrecord0000001"),
        (
            "customer-456",
            "customer-456-main",
            "agent.customer456.com",
            "svc00000000000000000000002",
            "pbrecord0000002",
        ),
    ):
        assert f'<td data-label="Tenant">{tenant}</td>' in page
        assert f"<strong>{stack}</strong>" in page
        assert domain in page
        # As the server names them (Coolify: `<compose key>-<uuid>`, `<uuid>_<slug(volume)>`).
        assert f"<code>cf-agent-{tenant}-{stack}-{service}</code>" in page
        assert f"<code>{service}_cf-agent-{tenant}-{stack}-data</code>" in page
        assert record in page
        # The text to type is shown as text beside the box, not as a placeholder in it.
        assert f"Type <code>{tenant}/{stack}</code>" in page
    assert "destroys its containers, volumes and data" in page
    assert (
        "placeholder="
        not in re.search(r'<form[^>]*id="cf-confirm-delete".*?</form>', page, re.S)[0]
    )
    assert "_cf-agent-customer-123_" not in page  # the compose file's name, not the server's
    assert not Operation.objects.exists()
    assert callbacks == []


def test_delete_confirmation_of_a_stack_not_in_coolify_shows_the_uuid_placeholder(
    client, admin_role, make_stack
):
    stack = runbook_stack(make_stack, template_name="base-llm", domains={})
    login(client, admin_role)

    page = html(run_action(client, "delete_stacks", [stack]))

    for name in (
        f"cf-agent-{TENANT}-{STACK}-&lt;service uuid&gt;",
        f"cf-webui-{TENANT}-{STACK}-&lt;service uuid&gt;",
        f"&lt;service uuid&gt;_cf-agent-{TENANT}-{STACK}-models",
        f"&lt;service uuid&gt;_cf-agent-{TENANT}-{STACK}-webui",
    ):
        assert f"<code>{name}</code>" in page


def test_a_wrong_typed_name_deletes_nothing(
    client, admin_role, two_deployed, django_capture_on_commit_callbacks
):
    first, second = two_deployed
    login(client, admin_role)

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(
            client,
            "delete_stacks",
            two_deployed,
            post="yes",
            **{f"confirm_{first.pk}": f"{TENANT}/{STACK}", f"confirm_{second.pk}": STACK},
        )

    assert response.status_code == 200
    page = html(response)
    assert "Nothing was deleted: type each stack's name exactly as shown." in page
    assert "Type customer-456/customer-456-main exactly." in page
    assert f"Type {TENANT}/{STACK} exactly." not in page  # that one was typed right
    assert not Operation.objects.exists()
    assert callbacks == []
    assert set(Stack.objects.values_list("status", flat=True)) == {StackStatus.RUNNING}


def test_the_right_typed_names_queue_one_delete_per_stack(
    client, admin_role, two_deployed, django_capture_on_commit_callbacks
):
    first, second = two_deployed
    login(client, admin_role)

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(
            client,
            "delete_stacks",
            two_deployed,
            post="yes",
            **{
                f"confirm_{first.pk}": f"{TENANT}/{STACK}",
                f"confirm_{second.pk}": " customer-456/customer-456-main ",
            },
        )

    assert len(callbacks) == 2
    assert sorted(Operation.objects.values_list("stack_id", "kind")) == [
        (first.pk, OperationKind.DELETE),
        (second.pk, OperationKind.DELETE),
    ]
    assert Operation.objects.filter(requested_by=admin_role).count() == 2
    [message] = messages(response)
    assert message.startswith("Queued 2 deletes.")
    assert set(
        AuditEvent.objects.filter(action=AuditAction.OPERATION).values_list("actor_repr", "message")
    ) == {("admin", "Delete requested")}


def test_an_operator_posting_the_delete_action_queues_nothing(
    client, operator, two_deployed, django_capture_on_commit_callbacks
):
    first, second = two_deployed
    login(client, operator)

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(
            client,
            "delete_stacks",
            two_deployed,
            post="yes",
            **{
                f"confirm_{first.pk}": f"{TENANT}/{STACK}",
                f"confirm_{second.pk}": "customer-456/customer-456-main",
            },
        )

    assert response.status_code == 200
    assert not Operation.objects.exists()
    assert callbacks == []
    assert messages(response) == ["No action selected."]


def test_confirmations_started_on_the_stack_page_return_to_it(client, admin_role, make_stack):
    """The stack page's buttons send `_return_to`; the confirm pages must carry it on, or the
    confirmed POST (and "No, take me back") lands on the changelist instead of the stack."""
    stack = runbook_stack(make_stack)
    page = reverse("admin:stacks_stack_change", args=[stack.pk])
    login(client, admin_role)

    for action in (
        "delete_stacks",
        "redeploy_stacks",
        "rotate_secrets",
        "stop_stacks",
        "restart_stacks",
    ):
        response = run_action(client, action, [stack], _return_to=page)
        assert response.status_code == 200
        assert f'name="_return_to" value="{page}"' in html(response), action


def test_a_deleted_stack_is_a_read_only_tombstone(client, admin_role, make_stack):
    """A domain added on a deleted stack's page is live (released_at empty) and then holds
    that domain against every other stack, for ever."""
    stack = runbook_stack(make_stack, secrets={})
    stack.transition_to(StackStatus.DELETING)
    stack.transition_to(StackStatus.DELETED)
    url = reverse("admin:stacks_stack_change", args=[stack.pk])
    login(client, admin_role)
    data = change_form_data(client.get(url))
    data["domains-1-service"] = "webui"
    data["domains-1-domain"] = "new.customer123.com"

    client.post(url, data)

    assert not stack.domains.filter(released_at__isnull=True).exists()


# --- redeploy, rotate, retry ------------------------------------------------------------------


def test_redeploy_confirms_first(client, operator, make_stack, django_capture_on_commit_callbacks):
    stack = runbook_stack(make_stack, template_version="0ld0ld0ld0ld")
    login(client, operator)

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(client, "redeploy_stacks", [stack])
    assert response.templates[0].name == "admin/stacks/stack/confirm_redeploy.html"
    page = html(response)
    assert "<code>0ld0ld0ld0ld</code>" in page
    assert f"<code>{load_manifest('openclaw-agent').version}</code>" in page
    assert not Operation.objects.exists() and callbacks == []

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(client, "redeploy_stacks", [stack], post="yes")

    assert len(callbacks) == 1
    operation = Operation.objects.get()
    assert (operation.stack, operation.kind) == (stack, OperationKind.REDEPLOY)
    assert messages(response)[0].startswith("Queued 1 redeploy.")


def test_rotate_secrets_stores_new_values_and_queues_one_rotation(
    client, operator, make_stack, django_capture_on_commit_callbacks
):
    stack = runbook_stack(make_stack)
    login(client, operator)

    response = run_action(client, "rotate_secrets", [stack])
    assert response.templates[0].name == "admin/stacks/stack/rotate_secrets.html"
    page = html(response)
    assert f"Now: sk-…{ANTHROPIC_KEY[-4:]}" in page
    assert len(re.findall(r'type="password"', page)) == 2

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(
            client,
            "rotate_secrets",
            [stack],
            post="yes",
            ANTHROPIC_API_KEY=NEW_ANTHROPIC_KEY,
            TELEGRAM_BOT_TOKEN="",
        )

    html(response)
    assert len(callbacks) == 1
    operation = Operation.objects.get()
    assert (operation.stack, operation.kind) == (stack, OperationKind.ROTATE_SECRETS)
    assert operation.parameters == {"keys": ["ANTHROPIC_API_KEY"]}
    rotated = StackSecret.objects.get(stack=stack, key="ANTHROPIC_API_KEY")
    assert rotated.reveal() == NEW_ANTHROPIC_KEY
    assert NEW_ANTHROPIC_KEY not in rotated.value_encrypted
    assert rotated.masked_value == f"sk-…{NEW_ANTHROPIC_KEY[-4:]}"
    assert StackSecret.objects.get(stack=stack, key="TELEGRAM_BOT_TOKEN").reveal() == TELEGRAM_TOKEN
    assert messages(response)[0].startswith("Queued 1 rotation.")
    trail = json.dumps(list(AuditEvent.objects.values("message", "changes")))
    assert NEW_ANTHROPIC_KEY not in trail and ANTHROPIC_KEY not in trail


def test_rotate_secrets_refuses_several_stacks(client, operator, make_stack):
    stacks = [
        runbook_stack(make_stack),
        runbook_stack(make_stack, "customer-9", "customer-9-main", domains={}),
    ]
    login(client, operator)

    response = run_action(
        client, "rotate_secrets", stacks, post="yes", ANTHROPIC_API_KEY=NEW_ANTHROPIC_KEY
    )

    assert messages(response) == [
        "Rotate secrets works on one stack at a time: select exactly one."
    ]
    assert not Operation.objects.exists()
    assert StackSecret.objects.get(stack=stacks[0], key="ANTHROPIC_API_KEY").reveal() == (
        ANTHROPIC_KEY
    )


def test_rotate_secrets_without_a_value_changes_nothing(client, operator, make_stack):
    stack = runbook_stack(make_stack)
    login(client, operator)

    response = run_action(client, "rotate_secrets", [stack], post="yes", ANTHROPIC_API_KEY="")

    assert "Enter a new value for at least one key." in html(response)
    assert not Operation.objects.exists()


def test_retry_failed_requeues_the_failed_kind(
    client, operator, admin_role, make_stack, django_capture_on_commit_callbacks
):
    failed_deploy = runbook_stack(make_stack, status=StackStatus.ERROR)
    finished(failed_deploy, OperationKind.DEPLOY, OperationStatus.SUCCEEDED)
    failed = finished(
        failed_deploy,
        OperationKind.REDEPLOY,
        OperationStatus.FAILED,
        parameters={"template": "openclaw-agent"},
        error="Step 'wait_healthy' failed",
    )
    healthy = runbook_stack(make_stack, "customer-7", "customer-7-main", domains={})
    finished(healthy, OperationKind.DEPLOY, OperationStatus.SUCCEEDED)
    failed_delete = runbook_stack(
        make_stack, "customer-8", "customer-8-main", status=StackStatus.ERROR, domains={}
    )
    delete = finished(failed_delete, OperationKind.DELETE, OperationStatus.FAILED)
    login(client, operator)

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(client, "retry_failed", [failed_deploy, healthy, failed_delete])

    assert len(callbacks) == 1
    retry = Operation.objects.get(status=OperationStatus.QUEUED)
    assert (retry.stack, retry.kind) == (failed_deploy, OperationKind.REDEPLOY)
    assert retry.parameters == {"template": "openclaw-agent", "retry_of": failed.pk}
    [message] = messages(response)
    assert message.startswith("Queued 1 retry; skipped 2:")
    assert " customer-7/customer-7-main: its last operation did not fail; " in message
    assert "customer-8/customer-8-main — retrying a delete needs the admin role" in message

    login(client, admin_role)
    with django_capture_on_commit_callbacks() as callbacks:
        run_action(client, "retry_failed", [failed_delete])
    assert len(callbacks) == 1
    retry = Operation.objects.get(stack=failed_delete, status=OperationStatus.QUEUED)
    assert retry.kind == OperationKind.DELETE and retry.parameters["retry_of"] == delete.pk


# --- the deploy page --------------------------------------------------------------------------


def deploy_form(**overrides: str) -> dict[str, str]:
    data = {
        "tenant": TENANT,
        "project_name": "customer-123-project",
        "template": "openclaw-agent",
        "stack_name": STACK,
        "domain_webui": DOMAIN,
        "env_ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "env_TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "_preview": "Preview (dry-run)",
    }
    data.update(overrides)
    return data


def preview(client: Client, **overrides: str):
    response = client.post(DEPLOY, deploy_form(**overrides))
    assert response.status_code == 200
    return response


def token_of(response) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html(response))
    assert match, "no Deploy button"
    return match.group(1)


def deploy(client: Client, token: str):
    return client.post(
        DEPLOY, {"template": "openclaw-agent", "token": token, "_deploy": "Deploy"}, follow=True
    )


def test_support_previews_but_cannot_deploy(client, support, make_tenant):
    make_tenant(TENANT)
    login(client, support)

    changelist = html(client.get(CHANGELIST))
    assert "Preview a deploy (dry-run)" in changelist
    assert "Deploy a new stack" not in changelist
    start = client.get(DEPLOY + f"?tenant={TENANT}&template=openclaw-agent")
    assert start.context["title"] == "Preview a deploy (dry-run)"

    response = preview(client)

    page = html(response)
    assert 'id="cf-plan"' in page
    assert "nothing has been deployed yet" in page
    assert 'name="_deploy"' not in page
    assert "deploying needs the operator role" in page
    assert PREVIEWS_SESSION_KEY not in client.session
    forged = client.post(
        DEPLOY, {"template": "openclaw-agent", "token": "anything", "_deploy": "Deploy"}
    )
    assert forged.status_code == 403
    assert not Stack.objects.exists() and not Operation.objects.exists()


def test_a_viewer_gets_no_deploy_page(client, viewer):
    login(client, viewer)

    assert "dry-run" not in html(client.get(CHANGELIST))
    assert client.get(DEPLOY).status_code == 403
    assert client.post(DEPLOY, deploy_form()).status_code == 403


def test_operator_previews_then_deploys(
    client, operator, make_tenant, django_capture_on_commit_callbacks
):
    make_tenant(TENANT)
    login(client, operator)
    assert "Deploy a new stack" in html(client.get(CHANGELIST))

    response = preview(client)
    page = html(response)
    assert "nothing has been deployed yet" in page
    assert f"sk-…{ANTHROPIC_KEY[-4:]}" in page  # masked
    assert 'id="cf-plan-compose"' in page and "cf-agent-customer-123-customer-123-main" in page
    assert not Stack.objects.exists()

    with django_capture_on_commit_callbacks() as callbacks:
        response = deploy(client, token_of(response))

    stack = Stack.objects.get(stack_name=STACK)
    assert response.redirect_chain == [(reverse("admin:stacks_stack_change", args=[stack.pk]), 302)]
    assert messages(response) == [
        f"Deploy of {TENANT}/{STACK} queued; this page follows its progress."
    ]
    html(response)
    assert len(callbacks) == 1
    operation = Operation.objects.get()
    assert (operation.stack, operation.kind, operation.status) == (
        stack,
        OperationKind.DEPLOY,
        OperationStatus.QUEUED,
    )
    assert operation.requested_by == operator
    assert stack.secrets.get(key="ANTHROPIC_API_KEY").reveal() == ANTHROPIC_KEY
    assert list(stack.domains.values_list("service", "domain")) == [("webui", DOMAIN)]
    session = json.dumps(dict(client.session.items()))
    assert ANTHROPIC_KEY not in session and TELEGRAM_TOKEN not in session


def test_a_used_preview_token_deploys_nothing(
    client, operator, make_tenant, django_capture_on_commit_callbacks
):
    make_tenant(TENANT)
    login(client, operator)
    token = token_of(preview(client))
    deploy(client, token)
    assert Operation.objects.count() == 1

    with django_capture_on_commit_callbacks() as callbacks:
        response = deploy(client, token)

    assert messages(response) == [
        "That preview has expired or was used already: preview the deploy again."
    ]
    assert callbacks == []
    assert Operation.objects.count() == 1 and Stack.objects.count() == 1


def test_an_expired_preview_token_deploys_nothing(client, operator, make_tenant):
    make_tenant(TENANT)
    login(client, operator)
    token = token_of(preview(client))
    session = client.session
    previews = session[PREVIEWS_SESSION_KEY]
    previews[token]["at"] -= PREVIEW_LIFETIME + 1
    session[PREVIEWS_SESSION_KEY] = previews
    session.save()

    response = deploy(client, token)

    assert "expired or was used already" in messages(response)[0]
    assert not Stack.objects.exists() and not Operation.objects.exists()


def test_an_unknown_token_deploys_nothing(client, operator, make_tenant):
    make_tenant(TENANT)
    login(client, operator)

    response = deploy(client, "not-a-token")

    assert "expired or was used already" in messages(response)[0]
    assert not Stack.objects.exists()


def test_plan_errors_appear_next_to_their_fields(client, operator, make_stack):
    runbook_stack(make_stack, "customer-9", STACK, domains={"webui": DOMAIN})
    make_stack(TENANT, "customer-123-other")
    login(client, operator)

    response = preview(client, env_ANTHROPIC_API_KEY="")

    page = html(response)
    for field, text in (
        ("stack_name", "A live stack named customer-123-main already exists"),
        ("domain_webui", f"{DOMAIN} is already used by stack customer-9/{STACK}"),
        ("env_ANTHROPIC_API_KEY", "Template openclaw-agent requires ANTHROPIC_API_KEY."),
    ):
        row = re.search(rf'<div class="form-row field-{field} errors">(.*?)</ul>', page, re.S)
        assert row is not None, field
        # Under its own box (after the input), not at the top of the row.
        box, errors = row.group(1).split('<ul class="errorlist cf-field-errors"')
        assert f'name="{field}"' in box, field
        assert text in errors, field
        assert text in " ".join(response.context["form"].errors[field])
    assert 'name="_deploy"' not in page
    assert 'id="cf-plan"' not in page and "[]" not in page  # no plan for a failed preview
    assert Stack.objects.count() == 2 and not Operation.objects.exists()


# --- progress fragment, tenant stack list -----------------------------------------------------


def test_the_progress_fragment_shows_the_latest_operations_steps(client, viewer, make_stack):
    stack = runbook_stack(make_stack)
    old = finished(stack, OperationKind.DEPLOY, OperationStatus.SUCCEEDED)
    OperationStep.objects.create(
        operation=old,
        position=1,
        name="old_step_of_the_deploy",
        outcome=StepOutcome.DONE,
        started_at=timezone.now(),
    )
    latest = in_flight(stack, OperationKind.RESTART)
    Operation.objects.filter(pk=latest.pk).update(current_step="wait_healthy")
    for position, (name, detail) in enumerate([("restart", "restart requested")], start=1):
        OperationStep.objects.create(
            operation=latest,
            position=position,
            name=name,
            outcome=StepOutcome.DONE,
            detail=detail,
            started_at=timezone.now(),
            duration_ms=12,
        )
    login(client, viewer)

    response = client.get(reverse("admin:stacks_stack_progress", args=[stack.pk]))

    assert response.status_code == 200
    page = html(response)
    assert f"Restart #{latest.pk}" in page
    assert 'data-in-flight="1"' in page
    assert "<code>restart</code>" in page and "restart requested" in page
    assert "<code>wait_healthy</code>" in page  # the step running now
    assert "old_step_of_the_deploy" not in page
    assert "<html" not in page  # a fragment, not a page


def test_the_progress_fragment_of_an_unknown_stack_is_404(client, viewer):
    login(client, viewer)
    assert client.get(reverse("admin:stacks_stack_progress", args=[999])).status_code == 404


def test_the_tenant_list_stacks_page_shows_the_runbook_listing(client, support, make_stack):
    stack = runbook_stack(make_stack, pocketbase_id="pbrecord0000001")
    make_stack(TENANT, "customer-123-second")
    make_stack(TENANT, "customer-123-gone", status=StackStatus.DELETED)
    make_stack("customer-456", "customer-456-main")
    tenant = stack.tenant
    login(client, support)

    change = html(client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])))
    url = reverse("admin:tenants_tenant_stacks", args=[tenant.pk])
    assert f'<a href="{url}">List stacks</a>' in change

    response = client.get(url)

    page = html(response)
    listing = tenant_stack_listing(tenant)
    assert response.context["listing"] == listing
    assert listing["total"] == 2
    assert [s["stack_name"] for s in listing["stacks"]] == [STACK, "customer-123-second"]
    assert "customer-123-gone" not in page and "customer-456-main" not in page
    shown = re.search(r"<h3>JSON</h3>\s*<pre[^>]*>(.*?)</pre>", page, re.S).group(1)
    assert json.loads(shown.replace("&quot;", '"')) == listing
    assert "pbrecord0000001" in page


def test_the_tenant_list_stacks_page_links_to_the_deploy_page(client, operator, make_tenant):
    """stacks.html overrides `object-tools`, but base.html renders that block inside
    `content`, which stacks.html replaces: the link never reaches the page."""
    tenant = make_tenant(TENANT)
    login(client, operator)

    page = html(client.get(reverse("admin:tenants_tenant_stacks", args=[tenant.pk])))

    assert f'href="{DEPLOY}?tenant={TENANT}"' in page
    assert "Deploy a new stack" in page


# --- the Operation admin is read-only ---------------------------------------------------------


def test_operations_cannot_be_added_changed_or_deleted_even_by_a_superuser(
    client, superuser, make_stack
):
    stack = runbook_stack(make_stack)
    operation = finished(stack, OperationKind.DEPLOY, OperationStatus.FAILED, error="boom")
    login(client, superuser)

    assert client.get(reverse("admin:stacks_operation_add")).status_code == 403
    change = reverse("admin:stacks_operation_change", args=[operation.pk])
    page = html(client.get(change))
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert 'name="_addanother"' not in page
    assert client.post(change, {"status": OperationStatus.SUCCEEDED}).status_code == 403
    delete = reverse("admin:stacks_operation_delete", args=[operation.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    changelist = client.get(reverse("admin:stacks_operation_changelist"))
    assert action_options(changelist) == set()
    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED


# --- the audit view ---------------------------------------------------------------------------


@pytest.fixture
def audited(client, operator, admin_role, make_stack, django_capture_on_commit_callbacks):
    """Events from real requests: an operator restarts one stack, an admin deletes another,
    and a shell (`provision`) asks for a third stack's deploy."""
    first = runbook_stack(make_stack)
    second = runbook_stack(
        make_stack, "customer-456", "customer-456-main", domains={"webui": "a.customer456.com"}
    )
    third = runbook_stack(
        make_stack, "customer-789", "customer-789-main", status=StackStatus.PENDING, domains={}
    )
    with django_capture_on_commit_callbacks():
        login(client, operator)
        run_action(client, "restart_stacks", [first], post="yes")
        login(client, admin_role)
        run_action(
            client,
            "delete_stacks",
            [second],
            post="yes",
            **{f"confirm_{second.pk}": "customer-456/customer-456-main"},
        )
        request_operation(third, OperationKind.DEPLOY, actor="cli:deployer")
    return first, second, third


def audit_rows(client: Client, query: str) -> list[tuple[str, str, str, str]]:
    response = client.get(AUDIT + query)
    assert response.status_code == 200
    html(response)
    return sorted(
        (e.actor_repr, e.action, e.tenant_slug, e.stack_name)
        for e in response.context["cl"].result_list
    )


def test_the_audit_view_filters_by_actor_tenant_stack_and_action(client, audited, operator, viewer):
    login(client, viewer)

    assert audit_rows(client, f"?actor__id__exact={operator.pk}") == [
        ("operator", AuditAction.LOGIN, "", ""),
        ("operator", AuditAction.OPERATION, TENANT, STACK),
    ]
    assert audit_rows(client, "?tenant=customer-456") == [
        ("admin", AuditAction.OPERATION, "customer-456", "customer-456-main")
    ]
    assert audit_rows(client, "?stack=customer-789-main") == [
        ("cli:deployer", AuditAction.OPERATION, "customer-789", "customer-789-main")
    ]
    assert audit_rows(client, "?q=cli%3Adeployer") == [
        ("cli:deployer", AuditAction.OPERATION, "customer-789", "customer-789-main")
    ]
    assert len(audit_rows(client, "?action__exact=operation")) == 3
    assert audit_rows(client, "?action__exact=operation_result") == []
    assert audit_rows(client, f"?tenant={TENANT}&action__exact=operation") == [
        ("operator", AuditAction.OPERATION, TENANT, STACK)
    ]
    page = html(client.get(AUDIT))
    for text in ("operator", "admin", "cli:deployer", "Restart requested", "Delete requested"):
        assert text in page


def test_the_audit_trail_is_read_only(client, audited, superuser):
    login(client, superuser)
    event = AuditEvent.objects.first()

    assert client.get(reverse("admin:cfadmin_auditevent_add")).status_code == 403
    delete = reverse("admin:cfadmin_auditevent_delete", args=[event.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


# --- no secret anywhere -----------------------------------------------------------------------


def test_no_page_shows_a_secret_value(client, admin_role, make_stack):
    stack = runbook_stack(make_stack, pocketbase_id="pbrecord0000001")
    operation = finished(stack, OperationKind.DEPLOY, OperationStatus.SUCCEEDED)
    tenant = Tenant.objects.get(slug=TENANT)
    login(client, admin_role)

    pages = [
        CHANGELIST,
        reverse("admin:stacks_stack_change", args=[stack.pk]),
        reverse("admin:stacks_stack_progress", args=[stack.pk]),
        reverse("admin:stacks_operation_changelist"),
        reverse("admin:stacks_operation_change", args=[operation.pk]),
        reverse("admin:tenants_tenant_change", args=[tenant.pk]),
        reverse("admin:tenants_tenant_stacks", args=[tenant.pk]),
        AUDIT,
        DEPLOY + f"?tenant={TENANT}&template=openclaw-agent",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html(response)
    for action in ("delete_stacks", "rotate_secrets", "redeploy_stacks", "stop_stacks"):
        html(run_action(client, action, [stack]))
    preview_page = preview(client, stack_name="customer-123-new", domain_webui="new.example.com")
    html(deploy(client, token_of(preview_page)))
    for event in AuditEvent.objects.all():
        response = client.get(reverse("admin:cfadmin_auditevent_change", args=[event.pk]))
        html(response)
