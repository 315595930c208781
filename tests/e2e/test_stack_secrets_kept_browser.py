"""A stack's page keeps the secrets typed into its secrets inline across a failed save (issue 14,
point 1), in headless Debian Chromium: the box comes back empty and marked "✓ kept" with a mask,
and the fixed page saves the value without retyping it.

Screenshot (tests/e2e/screens.py): stack-secrets-kept-1400.png and -390.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from stacks.choices import StackStatus
from stacks.models import StackSecret
from tests.e2e.conftest import log_in
from tests.e2e.screens import shoot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ANTHROPIC_KEY = "sk-test-e2e-stored-" + "Lk8Jh7Gf6Ds5" * 2 + "a1b2"
TELEGRAM_TOKEN = "123456789:test-e2e-kept-telegram-token-m2n3"


def test_a_failed_save_keeps_a_typed_secret_then_saves_it(
    page: Page, live_server, operator, make_stack
):
    stack = make_stack(
        "customer-123",
        status=StackStatus.RUNNING,
        domains={"webui": "demo.customer123.com"},
        secrets={"ANTHROPIC_API_KEY": ANTHROPIC_KEY},
    )
    log_in(page, live_server, operator.username, then=f"/admin/stacks/stack/{stack.pk}/change/")

    page.fill("#id_secrets-1-key", "TELEGRAM_BOT_TOKEN")
    page.fill("#id_secrets-1-value", TELEGRAM_TOKEN)
    page.fill("#id_domains-1-service", "webui")
    page.fill("#id_domains-1-domain", "not a domain!")
    page.click("input[name=_continue]")

    # Shown again with the domain's error; the secret's box empty, marked kept by its mask.
    expect(page.locator("#domains-group .errorlist")).to_be_visible()
    expect(page.locator("#id_secrets-1-value")).to_have_value("")
    expect(page.locator("#id_secrets-1-value_kept")).to_contain_text("✓ kept 123…m2n3")
    assert TELEGRAM_TOKEN not in page.content() and ANTHROPIC_KEY not in page.content()
    page.locator("#secrets-group").scroll_into_view_if_needed()
    shoot(page, "stack-secrets-kept")

    # Fixed domain, secret box left empty: the kept value is saved.
    page.fill("#id_domains-1-service", "")
    page.fill("#id_domains-1-domain", "")
    page.click("input[name=_continue]")

    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")
    secret = StackSecret.objects.get(stack=stack, key="TELEGRAM_BOT_TOKEN")
    assert secret.reveal() == TELEGRAM_TOKEN
    expect(page.locator("#id_secrets-1-value_kept")).to_have_count(0)
    assert TELEGRAM_TOKEN not in page.content()
