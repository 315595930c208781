"""Every project name and description cfadmin can build passes Coolify's own rules
(app/Support/ValidationPatterns.php NAME_PATTERN / DESCRIPTION_PATTERN, v4.3.11), and names a
person types that Coolify would refuse are refused in the preview, next to the field."""

import re

import pytest

from stacks.clients import coolify_rules
from stacks.compose import load_manifest
from stacks.plan import (
    DeployRequest,
    project_description,
    service_description,
    validate_deploy_request,
)
from tenants.models import Tenant

# The patterns as Coolify writes them, with \p{…} spelled out for the characters tested here.
COOLIFY_NAME = re.compile(r"^[\w\s\-_.@/&()#,:+]+$")
COOLIFY_DESCRIPTION = re.compile(r"^[\w\s\-_.,!?()'\"+=*@/&]+$")
LONGEST_SLUG = "a" * 63


@pytest.mark.parametrize("tenant", ["a", "customer-123", LONGEST_SLUG])
def test_project_descriptions_cfadmin_builds_pass_coolify(tenant):
    text = project_description(tenant)
    assert coolify_rules.description_problem(text) is None
    assert COOLIFY_DESCRIPTION.fullmatch(text)
    assert ":" not in text


@pytest.mark.parametrize("template", ["openclaw-agent", "telegram-bot", "base-llm"])
def test_service_descriptions_stay_within_coolify_limits(template):
    text = service_description(LONGEST_SLUG, LONGEST_SLUG, load_manifest(template))
    assert len(text) <= 255


def test_the_old_description_would_have_been_refused():
    """`cfadmin: tenant x` was sent before: ':' is not in DESCRIPTION_PATTERN."""
    assert coolify_rules.description_problem("cfadmin: tenant x")
    assert coolify_rules.description_problem("ticket #4")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("customer-123-project", True),
        ("Kunde Müller (Berlin)", True),
        ("a/b & c, d: e + f #1", True),
        ("ab", False),  # at least 3
        ("  ab  ", False),  # trimmed first (TrimStrings)
        ("x" * 256, False),
        ("semi;colon", False),
        ("quote'", False),
        ("dollar$", False),
    ],
)
def test_coolify_name_rule(name, ok):
    assert (coolify_rules.name_problem(name) is None) is ok


def test_description_maker_replaces_refused_characters():
    assert coolify_rules.description("a: b #c") == "a b c"


@pytest.mark.django_db
@pytest.mark.parametrize("project_name", ["ab", "shop;drop", "price $5"])
def test_preview_refuses_project_names_coolify_would_refuse(project_name):
    Tenant.objects.create(slug="customer-1", name="Customer")
    errors, _ = validate_deploy_request(
        DeployRequest(
            tenant="customer-1",
            project_name=project_name,
            template="telegram-bot",
            stack_name="bot-1",
            domains=[],
            env={"TELEGRAM_BOT_TOKEN": "123:abc", "ANTHROPIC_API_KEY": "sk-ant-test"},
        )
    )
    [error] = [e for e in errors if e.field == "project_name"]
    assert error.code == "coolify_name"
    assert "Coolify" in error.message
