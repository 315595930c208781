"""Forms that keep everything (issue 14, point 1): a failed deploy preview or rotation shows the
form again with every typed value — non-secret ones in their boxes, secrets kept server-side
(encrypted) and marked "kept" — each error under its own field, and no plan. The tenant is an
autocomplete checked at step 1. Stop and restart ask first.

Every page is checked as raw bytes for the secret values."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from stacks import previews
from stacks.choices import OperationKind, StackStatus
from stacks.models import Operation, Stack, StackSecret
from tests.unit.test_admin_operations import (
    ANTHROPIC_KEY,
    DEPLOY,
    DOMAIN,
    NEW_ANTHROPIC_KEY,
    STACK,
    TELEGRAM_TOKEN,
    TENANT,
    deploy,
    deploy_form,
    html,
    login,
    messages,
    page_buttons,
    plain,
    run_action,
    runbook_stack,
    token_of,
)

NEW_TELEGRAM_TOKEN = "987654321:test-forms-keep-telegram-token"


def input_value(page: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert match, f"no input {name}"
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else None


def kept_token(page: str) -> str:
    return input_value(page, "kept") or ""


def field_row(page: str, field: str) -> str:
    match = re.search(
        rf'<div class="form-row field-{field}[ "].*?(?=<div class="form-row|</fieldset>)',
        page,
        re.S,
    )
    assert match, f"no row for {field}"
    return match.group(0)


def no_secret_in(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


# --- the deploy form: a failed preview keeps everything -------------------------------------


def test_a_failed_preview_keeps_every_value_and_shows_no_plan(client, operator, make_tenant):
    make_tenant(TENANT)
    login(client, operator)

    response = client.post(DEPLOY, deploy_form(stack_name="Not_A_Label!"))

    page = html(response)  # no secret value anywhere in the page
    assert response.context["form"].errors["stack_name"]
    # The non-secret values are back in their boxes.
    assert input_value(page, "project_name") == "customer-123-project"
    assert input_value(page, "stack_name") == "Not_A_Label!"
    assert input_value(page, "domain_webui") == DOMAIN
    tenant_select = re.search(r'<select name="tenant".*?</select>', page, re.S).group(0)
    assert re.search(rf'<option value="\d+" selected>{TENANT}</option>', tenant_select)
    # The secrets: empty boxes, each marked kept with its mask.
    for key, secret in (
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ("TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN),
    ):
        row = field_row(page, f"env_{key}")
        assert input_value(row, f"env_{key}") is None
        assert "✓ kept" in row and previews.encryption.mask(secret) in row
    # The error under its own box; no plan at all.
    row = field_row(page, "stack_name")
    box, error = row.split('<ul class="errorlist cf-field-errors"')
    assert 'name="stack_name"' in box
    assert response.context["form"].errors["stack_name"][0] in plain(error)
    assert 'id="cf-plan"' not in page and "[]" not in page
    assert 'name="_deploy"' not in page
    # Kept server-side, encrypted.
    session = json.dumps(dict(client.session.items()))
    no_secret_in(session, ANTHROPIC_KEY, TELEGRAM_TOKEN)
    assert kept_token(page) in client.session[previews.KEPT_SESSION_KEY]


def test_after_a_failed_preview_the_kept_secrets_deploy_without_retyping(
    client, operator, make_tenant, django_capture_on_commit_callbacks
):
    make_tenant(TENANT)
    login(client, operator)
    failed = html(client.post(DEPLOY, deploy_form(stack_name="Not_A_Label!")))

    # Fixed name, secret boxes left empty: the kept values are used.
    response = client.post(
        DEPLOY,
        deploy_form(kept=kept_token(failed), env_ANTHROPIC_API_KEY="", env_TELEGRAM_BOT_TOKEN=""),
    )
    page = html(response)
    assert 'id="cf-plan"' in page and "nothing has been deployed yet" in page
    assert f"ANTHROPIC_API_KEY</code>={previews.encryption.mask(ANTHROPIC_KEY)}" in page
    with django_capture_on_commit_callbacks():  # the Deploy button's form, as a browser posts it
        done = client.post(
            DEPLOY,
            {
                "template": "openclaw-agent",
                "token": token_of(response),
                "kept": kept_token(page),
                "_deploy": "Deploy",
            },
            follow=True,
        )

    stack = Stack.objects.get(stack_name=STACK)
    assert messages(done) == [f"Deploy of {TENANT}/{STACK} queued; this page follows its progress."]
    assert stack.secrets.get(key="ANTHROPIC_API_KEY").reveal() == ANTHROPIC_KEY
    assert stack.secrets.get(key="TELEGRAM_BOT_TOKEN").reveal() == TELEGRAM_TOKEN
    # Used: the kept values are forgotten.
    assert not client.session.get(previews.KEPT_SESSION_KEY)


def test_typing_a_new_value_replaces_a_kept_one(client, operator, make_tenant):
    make_tenant(TENANT)
    login(client, operator)
    failed = html(client.post(DEPLOY, deploy_form(stack_name="Not_A_Label!")))

    response = client.post(
        DEPLOY,
        deploy_form(
            kept=kept_token(failed),
            env_ANTHROPIC_API_KEY="",
            env_TELEGRAM_BOT_TOKEN=NEW_TELEGRAM_TOKEN,
        ),
    )

    page = response.content.decode()
    no_secret_in(page, ANTHROPIC_KEY, TELEGRAM_TOKEN, NEW_TELEGRAM_TOKEN)
    assert previews.encryption.mask(NEW_TELEGRAM_TOKEN) in page
    kept = previews.kept_secrets(client.session, "deploy", kept_token(page))
    assert kept == {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "TELEGRAM_BOT_TOKEN": NEW_TELEGRAM_TOKEN}


def test_an_invalid_secret_is_not_kept_and_its_error_sits_under_it(client, operator, make_tenant):
    make_tenant(TENANT)
    login(client, operator)

    response = client.post(DEPLOY, deploy_form(env_TELEGRAM_BOT_TOKEN=" padded "))

    page = html(response)
    row = field_row(page, "env_TELEGRAM_BOT_TOKEN")
    assert "must not start or end with spaces" in row.split("cf-field-errors")[1]
    assert "✓ kept" not in row  # an invalid value is asked for again
    assert "✓ kept" in field_row(page, "env_ANTHROPIC_API_KEY")
    assert 'id="cf-plan"' not in page


def test_a_kept_token_works_only_for_its_own_form(client, operator, make_stack, make_tenant):
    """A rotation's token (or an unknown one) brings nothing into the deploy form."""
    stack = runbook_stack(make_stack, "customer-9", "customer-9-main", domains={})
    make_tenant(TENANT)
    login(client, operator)
    rotate = html(
        run_action(
            client,
            "rotate_secrets",
            [stack],
            post="yes",
            ANTHROPIC_API_KEY=" x ",
            TELEGRAM_BOT_TOKEN=NEW_TELEGRAM_TOKEN,
        )
    )

    response = client.post(
        DEPLOY,
        deploy_form(kept=kept_token(rotate), env_ANTHROPIC_API_KEY="", env_TELEGRAM_BOT_TOKEN=""),
    )

    assert "✓ kept" not in html(response)
    assert "Template openclaw-agent requires ANTHROPIC_API_KEY." in html(response)


def test_a_deploy_refused_at_the_last_moment_shows_the_form_again_filled(
    client, operator, make_tenant, make_stack
):
    make_tenant(TENANT)
    login(client, operator)
    token = token_of(client.post(DEPLOY, deploy_form()))
    # Meanwhile someone else takes the domain.
    runbook_stack(make_stack, "customer-9", "customer-9-main", domains={"webui": DOMAIN})

    response = deploy(client, token)

    page = html(response)
    assert messages(response) == ["Nothing was deployed: the form below says why."]
    assert input_value(page, "stack_name") == STACK
    assert input_value(page, "domain_webui") == DOMAIN
    assert (
        f"{DOMAIN} is already used by stack customer-9/customer-9-main"
        in field_row(page, "domain_webui").split("cf-field-errors")[1]
    )
    assert "✓ kept" in field_row(page, "env_ANTHROPIC_API_KEY")
    assert 'id="cf-plan"' not in page
    assert not Stack.objects.filter(stack_name=STACK).exists()


# --- step 1: the tenant is searched and checked ----------------------------------------------


def test_the_tenant_is_an_autocomplete_of_the_tenant_admin(client, support, make_tenant):
    tenant = make_tenant(TENANT, name="Acme Robotics")
    make_tenant("customer-456")
    login(client, support)

    page = html(client.get(DEPLOY))

    select = re.search(r'<select name="tenant"[^>]*>', page).group(0)
    assert "admin-autocomplete" in select
    assert 'data-field-name="tenant"' in select and 'data-model-name="stack"' in select
    assert "admin/js/autocomplete.js" in page
    answer = client.get(
        reverse("admin:autocomplete"),
        {"term": "acme", "app_label": "stacks", "model_name": "stack", "field_name": "tenant"},
    )
    assert answer.status_code == 200
    assert answer.json()["results"] == [{"id": str(tenant.pk), "text": TENANT}]


def test_an_unknown_tenant_is_refused_at_step_1_under_its_field(client, operator):
    login(client, operator)

    response = client.get(DEPLOY, {"tenant": "nobody", "template": "openclaw-agent"})

    page = html(response)
    assert 'id="cf-deploy-start"' in page and 'id="cf-deploy-form"' not in page
    row = field_row(page, "tenant")
    assert "No such tenant" in row.split("cf-field-errors")[1]
    assert response.context["start_form"].errors["tenant"]


def test_a_missing_tenant_is_refused_at_step_1(client, operator, make_tenant):
    make_tenant(TENANT)
    login(client, operator)

    page = html(client.get(DEPLOY, {"tenant": "", "template": "openclaw-agent"}))

    assert "Choose the tenant the stack is for." in field_row(page, "tenant")
    assert 'id="cf-deploy-form"' not in page


@pytest.mark.parametrize("by", ["slug", "id"])
def test_a_known_tenant_goes_on_to_step_2(client, operator, make_tenant, by):
    tenant = make_tenant(TENANT)
    login(client, operator)

    value = tenant.slug if by == "slug" else str(tenant.pk)
    response = client.get(DEPLOY, {"tenant": value, "template": "openclaw-agent"})

    page = html(response)
    assert 'id="cf-deploy-form"' in page
    assert re.search(rf'<option value="{tenant.pk}" selected>{TENANT}</option>', page)
    assert input_value(page, "project_name") == "customer-123-project"


def test_a_link_naming_the_tenant_preselects_it_at_step_1(client, operator, make_tenant):
    tenant = make_tenant(TENANT)
    login(client, operator)

    page = html(client.get(DEPLOY, {"tenant": TENANT}))

    assert 'id="cf-deploy-start"' in page and "errorlist" not in page
    assert re.search(rf'<option value="{tenant.pk}" selected>{TENANT}</option>', page)


# --- rotate secrets keeps what was typed ----------------------------------------------------


def test_a_failed_rotation_keeps_the_valid_values_then_rotates_without_retyping(
    client, operator, make_stack, django_capture_on_commit_callbacks
):
    stack = runbook_stack(make_stack)
    login(client, operator)

    response = run_action(
        client,
        "rotate_secrets",
        [stack],
        post="yes",
        ANTHROPIC_API_KEY=NEW_ANTHROPIC_KEY,
        TELEGRAM_BOT_TOKEN=" padded ",
    )

    page = html(response)
    no_secret_in(page, NEW_TELEGRAM_TOKEN)
    assert response.templates[0].name == "admin/stacks/stack/rotate_secrets.html"
    assert not Operation.objects.exists()
    anthropic = field_row(page, "ANTHROPIC_API_KEY")
    assert "✓ kept" in anthropic and previews.encryption.mask(NEW_ANTHROPIC_KEY) in anthropic
    assert "errorlist" not in anthropic
    telegram = field_row(page, "TELEGRAM_BOT_TOKEN")
    assert "must not start or end with spaces" in telegram.split("cf-field-errors")[1]

    with django_capture_on_commit_callbacks():
        done = run_action(
            client,
            "rotate_secrets",
            [stack],
            post="yes",
            kept=kept_token(page),
            ANTHROPIC_API_KEY="",
            TELEGRAM_BOT_TOKEN="",
        )

    assert plain(messages(done)[0]).startswith("Queued 1 rotation.")
    assert StackSecret.objects.get(stack=stack, key="ANTHROPIC_API_KEY").reveal() == (
        NEW_ANTHROPIC_KEY
    )
    assert StackSecret.objects.get(stack=stack, key="TELEGRAM_BOT_TOKEN").reveal() == (
        TELEGRAM_TOKEN
    )


def test_a_refused_rotation_shows_the_form_again_with_the_reason(client, operator, make_stack):
    stack = runbook_stack(make_stack)
    Operation.objects.create(
        stack=stack, kind=OperationKind.RESTART, status="running", requested_by_repr="someone"
    )
    login(client, operator)

    response = run_action(
        client, "rotate_secrets", [stack], post="yes", ANTHROPIC_API_KEY=NEW_ANTHROPIC_KEY
    )

    page = html(response)
    assert "Nothing was rotated: customer-123/customer-123-main already has an operation" in page
    assert "✓ kept" in field_row(page, "ANTHROPIC_API_KEY")
    assert StackSecret.objects.get(stack=stack, key="ANTHROPIC_API_KEY").reveal() == ANTHROPIC_KEY


# --- stop and restart ask first ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "kind", "button"),
    [
        ("stop_stacks", OperationKind.STOP, "Yes, stop 1 stack"),
        ("restart_stacks", OperationKind.RESTART, "Yes, restart 1 stack"),
    ],
)
def test_stop_and_restart_confirm_first(
    client, operator, make_stack, django_capture_on_commit_callbacks, action, kind, button
):
    stack = runbook_stack(make_stack)
    stopped = runbook_stack(
        make_stack, "customer-9", "customer-9-main", status=StackStatus.STOPPED, domains={}
    )
    login(client, operator)
    # A stopped stack can be restarted: here it would be skipped only for stop.
    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(client, action, [stack])

    assert response.templates[0].name == f"admin/stacks/stack/confirm_{kind}.html"
    page = html(response)
    assert f'value="{button}"' in page and DOMAIN in page
    assert not Operation.objects.exists() and callbacks == []

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(client, action, [stack], post="yes")

    assert len(callbacks) == 1
    assert Operation.objects.get().kind == kind
    assert stopped.operations.count() == 0


def test_the_stop_page_names_the_stacks_it_would_skip(client, operator, make_stack):
    running = runbook_stack(make_stack)
    stopped = runbook_stack(
        make_stack, "customer-9", "customer-9-main", status=StackStatus.STOPPED, domains={}
    )
    login(client, operator)

    page = html(run_action(client, "stop_stacks", [running, stopped]))

    assert 'value="Yes, stop 1 stack"' in page
    assert "skipped: not possible while stopped" in page
    assert not Operation.objects.exists()


def test_the_stack_page_stop_and_restart_buttons_lead_to_a_confirmation(
    client, operator, make_stack
):
    stack = runbook_stack(make_stack)
    login(client, operator)
    response = client.get(reverse("admin:stacks_stack_change", args=[stack.pk]))
    page = html(response)
    assert ">Stop…</button>" in page and ">Restart…</button>" in page
    assert {"stop_stacks", "restart_stacks"} <= set(page_buttons(response))


# --- the store itself ---------------------------------------------------------------------------


def test_kept_secrets_are_encrypted_scoped_and_expire():
    session: dict = {}
    token = previews.keep_secrets(session, "deploy", {"KEY": ANTHROPIC_KEY}, now=1000.0)

    assert ANTHROPIC_KEY not in json.dumps(session)
    assert previews.kept_secrets(session, "deploy", token, now=1001.0) == {"KEY": ANTHROPIC_KEY}
    assert previews.kept_secrets(session, "rotate:1", token, now=1001.0) == {}
    assert previews.kept_secrets(session, "deploy", "forged", now=1001.0) == {}
    late = 1000.0 + previews.PREVIEW_LIFETIME + 1
    assert previews.kept_secrets(session, "deploy", token, now=late) == {}

    newer = previews.keep_secrets(session, "deploy", {"KEY": "other"}, replaces=token, now=1002.0)
    assert token not in session[previews.KEPT_SESSION_KEY]
    previews.forget_secrets(session, newer)
    assert session[previews.KEPT_SESSION_KEY] == {}
    assert previews.keep_secrets(session, "deploy", {}) == ""  # nothing typed: nothing kept


@pytest.mark.parametrize("value", ["99999999999999999999999", "<script>", "customer-123 "])
def test_odd_tenant_values_are_a_field_error_not_a_500(client, operator, value):
    login(client, operator)

    response = client.get(DEPLOY, {"tenant": value, "template": "openclaw-agent"})

    assert response.status_code == 200
    assert "No such tenant" in field_row(html(response), "tenant")
