"""Forms that keep everything (issue 14, point 1) on a stack's page: a save that fails anywhere
(a bad domain) keeps the secret values typed into the secrets inline — encrypted in the session
under a token the page carries, scoped to that stack — and marks their rows "✓ kept"; the next
save uses a kept value for a box left empty, a value typed again replaces it, and a value that
failed its own rule is not kept.

Every page is checked for the secret values (test_admin_operations.html), and the session, the
audit trail and the admin's log for their plaintext."""

from __future__ import annotations

import json
import re

from django.contrib.admin.models import LogEntry
from django.urls import reverse

from cfadmin import encryption
from cfadmin.models import AuditEvent
from stacks import previews
from stacks.admin.stacks import secrets_purpose
from stacks.models import Stack, StackSecret
from tests.unit.test_admin_operations import (
    ANTHROPIC_KEY,
    DOMAIN,
    NEW_ANTHROPIC_KEY,
    SECRETS,
    TELEGRAM_TOKEN,
    change_form_data,
    html,
    login,
    runbook_stack,
)

NEW_TELEGRAM_TOKEN = "987654321:test-stack-secrets-kept-telegram"
RETYPED_ANTHROPIC_KEY = "sk-test-retyped-" + "Qa1Ws2Ed3Rf4" * 2 + "k7j8"
TYPED = (NEW_ANTHROPIC_KEY, NEW_TELEGRAM_TOKEN, RETYPED_ANTHROPIC_KEY)
BAD_DOMAIN = "not a domain!"


def page_of(stack: Stack) -> str:
    return reverse("admin:stacks_stack_change", args=[stack.pk])


def checked(response) -> str:
    """The page, failing the test if any secret value (stored or typed) is in it."""
    page = html(response)
    for secret in TYPED:
        assert secret not in page, "a typed secret value is in the page"
    return page


def secret_row(page: str, index: int) -> str:
    match = re.search(rf'<tr[^>]*id="secrets-{index}".*?</tr>', page, re.S)
    assert match, f"no secrets row {index}"
    return match.group(0)


def kept_token(page: str) -> str:
    match = re.search(r'<input type="hidden" name="secrets-kept" value="([^"]*)"', page)
    return match.group(1) if match else ""


def no_plaintext_in_session_or_trail(client) -> None:
    stored = json.dumps(dict(client.session.items()), default=str)
    stored += json.dumps(list(AuditEvent.objects.values()), default=str)
    stored += json.dumps(list(LogEntry.objects.values_list("change_message", "object_repr")))
    for secret in (*SECRETS, *TYPED):
        assert secret not in stored


def failed_save(client, stack: Stack, **typed: str):
    """The stack's page as a browser submits it, with `typed` values and a bad new domain."""
    data = change_form_data(client.get(page_of(stack)))
    data.update({"domains-1-service": "webui", "domains-1-domain": BAD_DOMAIN, **typed})
    response = client.post(page_of(stack), data)
    assert response.status_code == 200  # shown again with the error
    assert response.context["inline_admin_formsets"][0].formset.errors[1]["domain"]
    return response


def resubmit(client, stack: Stack, failed, **typed: str):
    """The page shown again, submitted as it is (secret boxes empty), the domain fixed."""
    data = change_form_data(failed)
    data.update({"domains-1-service": "", "domains-1-domain": "", **typed})
    return client.post(page_of(stack), data)


def stack_with_one_secret(make_stack) -> Stack:
    """A running stack with its domain and ANTHROPIC_API_KEY; TELEGRAM_BOT_TOKEN not set."""
    return runbook_stack(make_stack, secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY})


def value_of(stack: Stack, key: str) -> str:
    return StackSecret.objects.get(stack=stack, key=key).reveal()


# --- a failed save keeps what was typed --------------------------------------------------------


def test_a_failed_save_keeps_the_typed_secrets_out_of_the_page(client, operator, make_stack):
    stack = stack_with_one_secret(make_stack)
    login(client, operator)

    response = failed_save(
        client,
        stack,
        **{
            "secrets-0-value": NEW_ANTHROPIC_KEY,  # a new value for the stored key
            "secrets-1-key": "TELEGRAM_BOT_TOKEN",  # a new row
            "secrets-1-value": NEW_TELEGRAM_TOKEN,
        },
    )

    page = checked(response)
    # Each row's box is empty and marked kept with the mask of what was typed.
    for index, secret in ((0, NEW_ANTHROPIC_KEY), (1, NEW_TELEGRAM_TOKEN)):
        row = secret_row(page, index)
        box = re.search(rf'<input[^>]*name="secrets-{index}-value"[^>]*>', row).group(0)
        assert 'type="password"' in box and "value=" not in box
        assert "✓ kept" in row and encryption.mask(secret) in row
    assert 'value="TELEGRAM_BOT_TOKEN"' in secret_row(page, 1)  # the key typed is back too
    # Kept encrypted in the session, under the token the page carries, for this stack.
    token = kept_token(page)
    assert previews.kept_secrets(client.session, secrets_purpose(stack), token) == {
        "ANTHROPIC_API_KEY": NEW_ANTHROPIC_KEY,
        "TELEGRAM_BOT_TOKEN": NEW_TELEGRAM_TOKEN,
    }
    no_plaintext_in_session_or_trail(client)
    # Nothing saved.
    assert value_of(stack, "ANTHROPIC_API_KEY") == ANTHROPIC_KEY
    assert not StackSecret.objects.filter(stack=stack, key="TELEGRAM_BOT_TOKEN").exists()


def test_a_page_without_a_failed_save_keeps_nothing(client, operator, make_stack):
    stack = stack_with_one_secret(make_stack)
    login(client, operator)

    page = checked(client.get(page_of(stack)))

    assert "✓ kept" not in page and not kept_token(page)


# --- the next save uses them ------------------------------------------------------------------


def test_the_next_save_uses_the_kept_secrets_without_retyping(client, operator, make_stack):
    stack = stack_with_one_secret(make_stack)
    login(client, operator)
    failed = failed_save(
        client,
        stack,
        **{
            "secrets-0-value": NEW_ANTHROPIC_KEY,
            "secrets-1-key": "TELEGRAM_BOT_TOKEN",
            "secrets-1-value": NEW_TELEGRAM_TOKEN,
        },
    )

    response = resubmit(client, stack, failed)

    assert response.status_code == 302, response.context and response.context["errors"]
    assert value_of(stack, "ANTHROPIC_API_KEY") == NEW_ANTHROPIC_KEY
    assert value_of(stack, "TELEGRAM_BOT_TOKEN") == NEW_TELEGRAM_TOKEN
    # Used: forgotten; and never in the trail.
    assert not client.session.get(previews.KEPT_SESSION_KEY)
    no_plaintext_in_session_or_trail(client)
    checked(client.get(page_of(stack)))


def test_a_value_typed_again_replaces_the_kept_one(client, operator, make_stack):
    stack = stack_with_one_secret(make_stack)
    login(client, operator)
    failed = failed_save(client, stack, **{"secrets-0-value": NEW_ANTHROPIC_KEY})
    assert "✓ kept" in secret_row(checked(failed), 0)

    response = resubmit(client, stack, failed, **{"secrets-0-value": RETYPED_ANTHROPIC_KEY})

    assert response.status_code == 302
    assert value_of(stack, "ANTHROPIC_API_KEY") == RETYPED_ANTHROPIC_KEY


def test_a_second_failed_save_keeps_the_kept_and_the_newly_typed(client, operator, make_stack):
    stack = stack_with_one_secret(make_stack)
    login(client, operator)
    first = failed_save(client, stack, **{"secrets-0-value": NEW_ANTHROPIC_KEY})
    data = change_form_data(first)
    data.update({"secrets-1-key": "TELEGRAM_BOT_TOKEN", "secrets-1-value": NEW_TELEGRAM_TOKEN})

    second = client.post(page_of(stack), data)  # the bad domain is still there

    page = checked(second)
    assert "✓ kept" in secret_row(page, 0) and "✓ kept" in secret_row(page, 1)
    assert kept_token(page) != kept_token(checked(first))
    assert previews.kept_secrets(client.session, secrets_purpose(stack), kept_token(page)) == {
        "ANTHROPIC_API_KEY": NEW_ANTHROPIC_KEY,
        "TELEGRAM_BOT_TOKEN": NEW_TELEGRAM_TOKEN,
    }
    # The first token was replaced, not left behind.
    assert kept_token(checked(first)) not in client.session[previews.KEPT_SESSION_KEY]


def test_a_row_being_deleted_keeps_nothing(client, operator, make_stack):
    stack = stack_with_one_secret(make_stack)
    login(client, operator)

    response = failed_save(
        client,
        stack,
        **{
            "secrets-0-value": NEW_ANTHROPIC_KEY,
            "secrets-0-DELETE": "on",
            "secrets-1-key": "TELEGRAM_BOT_TOKEN",
            "secrets-1-value": NEW_TELEGRAM_TOKEN,
        },
    )

    page = checked(response)
    assert "✓ kept" not in secret_row(page, 0) and "✓ kept" in secret_row(page, 1)
    kept = previews.kept_secrets(client.session, secrets_purpose(stack), kept_token(page))
    assert kept == {"TELEGRAM_BOT_TOKEN": NEW_TELEGRAM_TOKEN}


# --- what is not kept -------------------------------------------------------------------------


def test_a_value_that_failed_its_own_rule_is_not_kept(client, operator, make_stack):
    stack = stack_with_one_secret(make_stack)
    login(client, operator)

    response = failed_save(
        client,
        stack,
        **{
            "secrets-0-value": NEW_ANTHROPIC_KEY,
            "secrets-1-key": "TELEGRAM_BOT_TOKEN",
            "secrets-1-value": " padded ",  # refused: spaces around
        },
    )

    page = checked(response)
    row = secret_row(page, 1)
    assert "must not start or end with spaces" in row
    assert "✓ kept" not in row and "✓ kept" in secret_row(page, 0)
    kept = previews.kept_secrets(client.session, secrets_purpose(stack), kept_token(page))
    assert kept == {"ANTHROPIC_API_KEY": NEW_ANTHROPIC_KEY}


def test_nothing_valid_typed_keeps_nothing(client, operator, make_stack):
    stack = stack_with_one_secret(make_stack)
    login(client, operator)

    response = failed_save(
        client, stack, **{"secrets-1-key": "TELEGRAM_BOT_TOKEN", "secrets-1-value": " padded "}
    )

    page = checked(response)
    assert "✓ kept" not in page and not kept_token(page)
    assert not client.session.get(previews.KEPT_SESSION_KEY)


# --- a token is for its own stack's page ------------------------------------------------------


def test_a_token_works_only_on_its_own_stacks_page(client, operator, make_stack):
    stack = stack_with_one_secret(make_stack)
    other = runbook_stack(make_stack, "customer-9", "customer-9-main", domains={}, secrets={})
    login(client, operator)
    token = kept_token(
        checked(
            failed_save(
                client,
                stack,
                **{"secrets-1-key": "TELEGRAM_BOT_TOKEN", "secrets-1-value": NEW_TELEGRAM_TOKEN},
            )
        )
    )
    assert token

    data = change_form_data(client.get(page_of(other)))
    data.update(
        {"secrets-kept": token, "secrets-0-key": "TELEGRAM_BOT_TOKEN", "secrets-0-value": ""}
    )
    response = client.post(page_of(other), data)

    page = checked(response)
    assert response.status_code == 200
    assert "Enter a value for a new secret." in secret_row(page, 0)
    assert "✓ kept" not in page
    assert not other.secrets.exists()
    # The other stack's attempt left the first stack's kept values alone.
    assert previews.kept_secrets(client.session, secrets_purpose(stack), token)


def test_a_token_of_another_form_brings_nothing(client, operator, make_stack):
    """Values kept for the deploy form (or a rotation) are not used on a stack's page."""
    stack = stack_with_one_secret(make_stack)
    login(client, operator)
    session = client.session
    token = previews.keep_secrets(session, "deploy", {"TELEGRAM_BOT_TOKEN": NEW_TELEGRAM_TOKEN})
    session.save()

    data = change_form_data(client.get(page_of(stack)))
    data.update(
        {"secrets-kept": token, "secrets-1-key": "TELEGRAM_BOT_TOKEN", "secrets-1-value": ""}
    )
    response = client.post(page_of(stack), data)

    assert response.status_code == 200
    assert "Enter a value for a new secret." in secret_row(checked(response), 1)
    assert not StackSecret.objects.filter(stack=stack, key="TELEGRAM_BOT_TOKEN").exists()


def test_the_stored_secrets_stay_out_of_the_page(client, operator, make_stack):
    """The stored values (not typed on this page) are neither kept nor shown."""
    stack = runbook_stack(make_stack)
    login(client, operator)

    page = checked(failed_save(client, stack))

    assert "✓ kept" not in page and not kept_token(page)
    assert encryption.mask(TELEGRAM_TOKEN) in page  # the stored value's mask, as always
    assert DOMAIN in page
