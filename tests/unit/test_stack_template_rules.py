"""A stack's domains and secrets must fit its template, and it records the template version."""

import pytest
from django.core.exceptions import ValidationError

from stacks.compose import load_manifest
from stacks.models import StackDomain, StackSecret


def test_a_domain_for_a_service_the_template_does_not_expose_is_refused(make_stack):
    stack = make_stack(template_name="telegram-bot")  # exposes no web service
    domain = StackDomain(stack=stack, service="webui", domain="bot.customer123.com")

    with pytest.raises(ValidationError) as caught:
        domain.full_clean()

    assert "service" in caught.value.message_dict
    assert "exposes no service 'webui'" in caught.value.message_dict["service"][0]


def test_a_domain_for_an_exposed_service_is_accepted(make_stack):
    stack = make_stack(template_name="base-llm")
    StackDomain(stack=stack, service="webui", domain="chat.customer123.com").full_clean()


def test_a_secret_the_template_does_not_use_is_refused(make_stack):
    stack = make_stack(template_name="base-llm")
    secret = StackSecret(stack=stack, key="TELEGRAM_BOT_TOKEN")
    secret.set_value("123456:test-token-value")

    with pytest.raises(ValidationError) as caught:
        secret.full_clean()

    message = caught.value.message_dict["key"][0]
    assert "does not use TELEGRAM_BOT_TOKEN" in message
    assert "OPENAI_API_KEY" in message  # says what it does take
    assert "test-token-value" not in message


def test_a_new_stack_records_the_current_template_version(make_stack):
    stack = make_stack(template_name="openclaw-agent")

    assert stack.template_version == load_manifest("openclaw-agent").version
    assert stack.template_is_current


def test_a_stack_on_an_older_version_is_not_current(make_stack):
    stack = make_stack(template_name="openclaw-agent", template_version="000000000000")

    assert not stack.template_is_current
