"""The dry-run deploy plan, deploy-request validation, template versions and the template pages.

The runbook's example:
    --tenant customer-123 --project-name "customer-123-project" --template openclaw-agent
    --stack-name customer-123-main --domain webui=demo.customer123.com
    --env ANTHROPIC_API_KEY=sk-... --env TELEGRAM_BOT_TOKEN=123:ABC...
"""

from __future__ import annotations

import base64
import html
import json
import re
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from cfadmin.encryption import mask
from stacks.choices import StackStatus
from stacks.clients import coolify_rules
from stacks.compose import RULES, load_manifest, parse_compose
from stacks.models import Stack, StackDomain
from stacks.plan import (
    DeployRequest,
    build_deploy_plan,
    coolify_deploy_calls,
    service_urls,
    validate_deploy_request,
)
from tenants.choices import TenantStatus

ANTHROPIC_KEY = "sk-test-" + "Qm4Rt7Yp2Wx9Kd3Lf8Hs6Jn1Bv5Cz0Ga" + "Ee2Tu8Io"
TELEGRAM_TOKEN = "123456789:test-" + "AAHfake0Token1Value2For3Tests4Only5"
SECRETS = (ANTHROPIC_KEY, TELEGRAM_TOKEN)
STACK_CHANGELIST = reverse("admin:stacks_stack_changelist")
TEMPLATES_PAGE = reverse("admin:stacks_templates")


def template_page(name: str) -> str:
    return reverse("admin:stacks_template", args=[name])


def runbook_request(**changes: Any) -> DeployRequest:
    fields: dict[str, Any] = {
        "tenant": "customer-123",
        "project_name": "customer-123-project",
        "template": "openclaw-agent",
        "stack_name": "customer-123-main",
        "domains": [("webui", "demo.customer123.com")],
        "env": {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN},
    }
    fields.update(changes)
    return DeployRequest(**fields)


def errors_by_field(plan_or_errors: Any) -> dict[str, list[dict[str, str]]]:
    errors = plan_or_errors["errors"] if isinstance(plan_or_errors, dict) else plan_or_errors
    result: dict[str, list[dict[str, str]]] = {}
    for error in errors:
        error = error if isinstance(error, dict) else error.as_dict()
        result.setdefault(error["field"], []).append(error)
    return result


def codes(plan: dict[str, Any]) -> dict[str, set[str]]:
    return {field: {e["code"] for e in errs} for field, errs in errors_by_field(plan).items()}


def assert_no_plaintext(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text
        assert json.dumps(secret)[1:-1] not in text
        # Not even the middle of it (mask shows at most the first 3 and last 4 characters).
        assert secret[3:-4] not in text


# --- the runbook's example -------------------------------------------------------------------


@pytest.fixture
def runbook_plan(make_tenant) -> dict[str, Any]:
    make_tenant("customer-123")
    return build_deploy_plan(runbook_request())


def test_runbook_plan_is_ok(runbook_plan):
    manifest = load_manifest("openclaw-agent")
    plan = runbook_plan

    assert plan["errors"] == []
    assert plan["ok"] is True
    assert plan["tenant"] == "customer-123"
    assert plan["project_name"] == "customer-123-project"
    assert plan["stack_name"] == "customer-123-main"
    assert plan["template"] == {"name": "openclaw-agent", "version": manifest.version}
    assert plan["domains"] == {"webui": ["demo.customer123.com"]}
    assert plan["env"] == {
        "ANTHROPIC_API_KEY": mask(ANTHROPIC_KEY),
        "TELEGRAM_BOT_TOKEN": mask(TELEGRAM_TOKEN),
    }
    assert plan["env"]["ANTHROPIC_API_KEY"] == f"sk-…{ANTHROPIC_KEY[-4:]}"
    assert plan["audit"] == {"ok": True, "findings": []}


def test_runbook_plan_compose(runbook_plan):
    compose = parse_compose(runbook_plan["compose"])
    # The compose key carries tenant and stack: Coolify names the container `<key>-<uuid>`
    # whatever `container_name` says (bootstrap/helpers/parsers.php), so none is written.
    webui = compose["services"]["cf-agent-customer-123-customer-123-main"]

    assert list(compose["services"]) == ["cf-agent-customer-123-customer-123-main"]
    assert "container_name" not in webui
    assert "cf-agent-customer-123_customer-123-main-data:/home/node/.openclaw" in webui["volumes"]
    assert list(compose["volumes"]) == ["cf-agent-customer-123_customer-123-main-data"]
    # the runbook's `docker volume ls | grep cf-agent-customer-123` still finds it
    assert all(name.startswith("cf-agent-customer-123") for name in compose["volumes"])
    assert "ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY}" in webui["environment"]
    assert "TELEGRAM_BOT_TOKEN=${TELEGRAM_BOT_TOKEN}" in webui["environment"]
    assert webui["labels"] == {
        "cf.tenant": "customer-123",
        "cf.stack": "customer-123-main",
        "cf.template": "openclaw-agent",
        "cf.template-version": load_manifest("openclaw-agent").version,
    }


def test_runbook_plan_coolify_calls_in_order(runbook_plan):
    calls = runbook_plan["coolify_calls"]

    assert [(c["step"], c["method"], c["path"]) for c in calls] == [
        ("ensure_project", "GET", "/api/v1/projects"),
        ("ensure_project", "POST", "/api/v1/projects"),
        ("create_service", "GET", "/api/v1/services"),
        ("create_service", "POST", "/api/v1/services"),
        ("set_env", "PATCH", "/api/v1/services/<service uuid>/envs/bulk"),
        ("start", "POST", "/api/v1/services/<service uuid>/start"),
        ("wait_healthy", "GET", "/api/v1/services"),
    ]
    assert calls[1]["body"] == {
        "name": "customer-123-project",
        "description": "cfadmin tenant customer-123",
    }
    create = calls[3]["body"]
    assert create["urls"] == [
        {
            "name": "cf-agent-customer-123-customer-123-main",
            "url": "https://demo.customer123.com:18789",
        }
    ]
    assert create["environment_name"] == "production"
    assert create["name"] == "customer-123-main"
    assert create["instant_deploy"] is False
    version = load_manifest("openclaw-agent").version
    assert (
        create["description"]
        == f"cfadmin stack customer-123/customer-123-main (openclaw-agent {version})"
    )
    compose_b64 = base64.b64encode(runbook_plan["compose"].encode()).decode()
    assert create["docker_compose_raw"] == (
        f"<base64 of the compose below, {len(compose_b64)} chars>"
    )
    assert calls[4]["body"] == {
        "data": [
            {"key": "ANTHROPIC_API_KEY", "value": mask(ANTHROPIC_KEY), "is_literal": True},
            {"key": "TELEGRAM_BOT_TOKEN", "value": mask(TELEGRAM_TOKEN), "is_literal": True},
        ]
    }


def test_runbook_plan_pocketbase_record(runbook_plan):
    assert runbook_plan["pocketbase"] == {
        "collection": "agent_stacks",
        "upsert_by": ["tenant", "stack_name"],
        "record": {
            "tenant": "customer-123",
            "stack_name": "customer-123-main",
            "template": "openclaw-agent",
            "status": "running",
            "project_uuid": "<project uuid>",
            "service_uuid": "<service uuid>",
            "domains": ["demo.customer123.com"],
        },
    }


def test_runbook_plan_never_holds_a_secret(runbook_plan):
    dumped = json.dumps(runbook_plan)
    assert_no_plaintext(dumped, *SECRETS)
    assert_no_plaintext(json.dumps(runbook_plan, ensure_ascii=False), *SECRETS)
    assert_no_plaintext(runbook_plan["compose"], *SECRETS)
    assert_no_plaintext(repr(runbook_plan), *SECRETS)


def test_runbook_plan_touches_nothing(runbook_plan):
    assert not Stack.objects.exists()
    assert not StackDomain.objects.exists()


def test_runbook_plan_is_json_serialisable_and_stable(make_tenant):
    make_tenant("customer-123")
    first = json.dumps(build_deploy_plan(runbook_request()), sort_keys=True)
    assert first == json.dumps(build_deploy_plan(runbook_request()), sort_keys=True)


def test_plan_with_only_the_required_key_has_no_optional_reference(make_tenant):
    make_tenant("customer-123")
    plan = build_deploy_plan(runbook_request(env={"ANTHROPIC_API_KEY": ANTHROPIC_KEY}))

    assert plan["ok"] is True
    assert "TELEGRAM_BOT_TOKEN" not in plan["compose"]
    assert [d["key"] for d in plan["coolify_calls"][4]["body"]["data"]] == ["ANTHROPIC_API_KEY"]


def test_a_secret_shaped_like_yaml_stays_out_of_the_compose(make_tenant):
    make_tenant("customer-123")
    hostile = "sk-" + "q" * 30 + "\nprivileged: true\nx: {a: b}"
    plan = build_deploy_plan(runbook_request(env={"ANTHROPIC_API_KEY": hostile}))

    assert plan["ok"] is True
    compose = parse_compose(plan["compose"])
    assert "privileged" not in compose["services"]["cf-agent-customer-123-customer-123-main"]
    assert_no_plaintext(json.dumps(plan), hostile)
    assert "q" * 30 not in json.dumps(plan)


def test_short_secrets_are_masked_entirely(make_tenant):
    make_tenant("customer-123")
    plan = build_deploy_plan(
        runbook_request(env={"ANTHROPIC_API_KEY": "sk-short", "TELEGRAM_BOT_TOKEN": "1:AB"})
    )
    assert plan["env"] == {"ANTHROPIC_API_KEY": "••••", "TELEGRAM_BOT_TOKEN": "••••"}
    assert "sk-short" not in json.dumps(plan)


def test_base_llm_plan_has_two_containers_and_webui_port(make_tenant):
    make_tenant("customer-123")
    plan = build_deploy_plan(
        runbook_request(
            template="base-llm",
            domains=[("webui", "chat.customer123.com"), ("webui", "llm.customer123.com")],
            env={},
        )
    )

    assert plan["ok"] is True, plan["errors"]
    compose = parse_compose(plan["compose"])
    assert list(compose["services"]) == [
        "cf-agent-customer-123-customer-123-main",
        "cf-webui-customer-123-customer-123-main",
    ]
    assert plan["domains"] == {"webui": ["chat.customer123.com", "llm.customer123.com"]}
    create = plan["coolify_calls"][3]["body"]
    assert create["urls"] == [
        {
            "name": "cf-webui-customer-123-customer-123-main",
            "url": "https://chat.customer123.com:8080,https://llm.customer123.com:8080",
        }
    ]
    # No env: no bulk env call.
    assert "set_env" not in [c["step"] for c in plan["coolify_calls"]]


def test_telegram_bot_plan_without_domains(make_tenant):
    make_tenant("customer-123")
    plan = build_deploy_plan(
        runbook_request(
            template="telegram-bot",
            domains=[],
            env={"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "ANTHROPIC_API_KEY": ANTHROPIC_KEY},
        )
    )
    assert plan["ok"] is True, plan["errors"]
    assert plan["domains"] == {}
    assert plan["coolify_calls"][3]["body"]["urls"] == []
    assert_no_plaintext(json.dumps(plan), *SECRETS)


def test_domains_are_normalised(make_tenant):
    make_tenant("customer-123")
    plan = build_deploy_plan(runbook_request(domains=[("webui", " Demo.Customer123.COM. ")]))
    assert plan["ok"] is True, plan["errors"]
    assert plan["domains"] == {"webui": ["demo.customer123.com"]}


def test_service_urls_and_calls_directly():
    manifest = load_manifest("openclaw-agent")
    assert service_urls(manifest, "t", "s", [("webui", "a.example.com")]) == [
        {"name": "cf-agent-t-s", "url": "https://a.example.com:18789"}
    ]
    # Without a domain the item still goes, empty: Coolify clears only an app it is told to.
    assert service_urls(manifest, "t", "s", []) == [{"name": "cf-agent-t-s", "url": ""}]
    calls = coolify_deploy_calls(
        manifest=manifest,
        tenant="t",
        project_name="p",
        stack_name="s",
        compose_text="x",
        domains=[],
        masked_env={},
    )
    assert [c["step"] for c in calls] == [
        "ensure_project",
        "ensure_project",
        "create_service",
        "create_service",
        "start",
        "wait_healthy",
    ]


# --- validation: every error at once, each naming its field ----------------------------------


def test_everything_wrong_with_an_unknown_tenant(db):
    request = DeployRequest(
        tenant="customer-404",
        project_name="",
        template="no-such-template",
        stack_name="-bad-",
        domains=[("webui", "https://demo.customer123.com/path")],
        env={"bad key": "v", "lower": "v"},
    )

    plan = build_deploy_plan(request)

    assert plan["ok"] is False
    assert codes(plan) == {
        "tenant": {"unknown_tenant"},
        "project_name": {"required"},
        "template": {"unknown_template"},
        "stack_name": {"dns_label_hyphen"},
        "domain.webui": {"domain_scheme"},
        "env.bad key": {"env_key"},
        "env.lower": {"env_key"},
    }
    assert all(e["message"] for e in plan["errors"])
    assert plan["compose"] is None
    assert plan["coolify_calls"] == []
    assert plan["template"] == {"name": "no-such-template", "version": None}


def test_everything_wrong_with_a_known_tenant_and_template(make_tenant, make_stack):
    make_stack("customer-123", "customer-123-main", domains={"webui": "taken.customer123.com"})
    secret_with_nul = "sk-" + "n" * 30 + "\x00tail"
    request = DeployRequest(
        tenant="customer-123",
        project_name="line one\nline two",
        template="openclaw-agent",
        stack_name="customer-123-main",
        domains=[
            ("webui", "taken.customer123.com"),
            ("webui", "new.customer123.com"),
            ("webui", "NEW.customer123.com"),
            ("api", "api.customer123.com"),
        ],
        env={"UNUSED_KEY": "some-value", "TELEGRAM_BOT_TOKEN": secret_with_nul},
    )

    plan = build_deploy_plan(request)
    by_field = errors_by_field(plan)

    assert plan["ok"] is False
    assert codes(plan) == {
        "project_name": {"control_chars"},
        "stack_name": {"stack_name_taken"},
        "domain.webui": {"domain_taken", "domain_duplicate"},
        "domain.api": {"unknown_service"},
        "env.UNUSED_KEY": {"unknown_env_key"},
        "env.TELEGRAM_BOT_TOKEN": {"env_value_nul"},
        "env.ANTHROPIC_API_KEY": {"env_required"},
    }
    assert "customer-123/customer-123-main" in by_field["domain.webui"][0]["message"]
    assert "webui" in by_field["domain.api"][0]["message"]
    # A bad value is never echoed.
    assert_no_plaintext(json.dumps(plan), secret_with_nul)
    assert "n" * 30 not in json.dumps(plan)
    assert "some-value" not in json.dumps(plan["errors"])
    # The names are fine, so the preview still renders.
    assert plan["compose"] is not None


def test_validate_deploy_request_returns_all_errors_and_cleaned_values(make_tenant):
    tenant = make_tenant("customer-123")
    errors, cleaned = validate_deploy_request(runbook_request())
    assert errors == []
    assert cleaned["tenant"] == tenant
    assert cleaned["manifest"] == load_manifest("openclaw-agent")
    assert cleaned["domains"] == [("webui", "demo.customer123.com")]
    assert cleaned["project_name"] == "customer-123-project"


def test_suspended_tenant_is_refused(make_tenant):
    make_tenant("customer-123", status=TenantStatus.SUSPENDED)
    plan = build_deploy_plan(runbook_request())
    assert codes(plan) == {"tenant": {"tenant_suspended"}}
    assert "suspended" in plan["errors"][0]["message"]


def test_stack_name_taken_by_a_live_stack_but_not_by_a_deleted_one(make_stack):
    make_stack("customer-123", "customer-123-main", status=StackStatus.RUNNING)
    assert codes(build_deploy_plan(runbook_request())) == {"stack_name": {"stack_name_taken"}}

    Stack.objects.update(status=StackStatus.DELETED)
    plan = build_deploy_plan(runbook_request())
    assert plan["ok"] is True, plan["errors"]


@pytest.mark.parametrize("status", sorted(set(StackStatus.values) - {StackStatus.DELETED}))
def test_stack_name_of_another_tenants_live_stack_is_taken(make_tenant, make_stack, status):
    # Stack names are unique platform-wide: the container is cf-agent-<stack> on a shared host.
    make_tenant("customer-123")
    make_stack("customer-456", "shared-name", status=status)

    plan = build_deploy_plan(runbook_request(stack_name="shared-name"))

    assert plan["ok"] is False
    assert codes(plan) == {"stack_name": {"stack_name_taken"}}
    message = errors_by_field(plan)["stack_name"][0]["message"]
    assert "shared-name" in message
    assert "customer-456" in message  # names the owning tenant


def test_stack_name_of_another_tenants_deleted_stack_is_free(make_tenant, make_stack):
    make_tenant("customer-123")
    make_stack("customer-456", "shared-name", status=StackStatus.DELETED)

    plan = build_deploy_plan(runbook_request(stack_name="shared-name"))

    assert plan["ok"] is True, plan["errors"]
    assert plan["stack_name"] == "shared-name"


def test_domain_owned_by_another_live_stack(make_tenant, make_stack):
    make_tenant("customer-123")
    make_stack("customer-456", "other", domains={"webui": "demo.customer123.com"})

    plan = build_deploy_plan(runbook_request())

    assert codes(plan) == {"domain.webui": {"domain_taken"}}
    assert "customer-456/other" in plan["errors"][0]["message"]


def test_domain_released_by_a_deleted_stack_is_free(make_tenant, make_stack):
    make_tenant("customer-123")
    make_stack(
        "customer-456",
        "old",
        domains={"webui": "demo.customer123.com"},
        status=StackStatus.DELETED,
    )
    StackDomain.objects.update(released_at=timezone.now())

    plan = build_deploy_plan(runbook_request())
    assert plan["ok"] is True, plan["errors"]


def test_domain_given_twice(make_tenant):
    make_tenant("customer-123")
    plan = build_deploy_plan(
        runbook_request(
            domains=[("webui", "demo.customer123.com"), ("webui", "Demo.Customer123.com")]
        )
    )
    assert codes(plan) == {"domain.webui": {"domain_duplicate"}}
    assert plan["domains"] == {"webui": ["demo.customer123.com"]}


def test_telegram_bot_exposes_no_service(make_tenant):
    make_tenant("customer-123")
    plan = build_deploy_plan(
        runbook_request(
            template="telegram-bot",
            env={"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "ANTHROPIC_API_KEY": ANTHROPIC_KEY},
        )
    )
    assert codes(plan) == {"domain.webui": {"unknown_service"}}
    message = plan["errors"][0]["message"]
    assert "telegram-bot" in message and "none" in message


def test_env_key_the_template_does_not_use(make_tenant):
    make_tenant("customer-123")
    env = {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "OPENAI_API_KEY": "sk-openai-" + "x" * 30}
    plan = build_deploy_plan(runbook_request(env=env))

    assert codes(plan) == {"env.OPENAI_API_KEY": {"unknown_env_key"}}
    assert "ANTHROPIC_API_KEY" in plan["errors"][0]["message"]
    # Not passed to the template, not pushed to Coolify.
    assert "OPENAI_API_KEY" not in plan["compose"]
    pushed = [d["key"] for d in plan["coolify_calls"][4]["body"]["data"]]
    assert pushed == ["ANTHROPIC_API_KEY"]
    assert "x" * 30 not in json.dumps(plan)


@pytest.mark.parametrize("value", [None, ""])
def test_required_env_key_missing_or_empty(make_tenant, value):
    make_tenant("customer-123")
    env = {"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN}
    if value is not None:
        env["ANTHROPIC_API_KEY"] = value
    plan = build_deploy_plan(runbook_request(env=env))
    assert codes(plan) == {"env.ANTHROPIC_API_KEY": {"env_required"}}
    assert "ANTHROPIC_API_KEY" in plan["errors"][0]["message"]


def test_value_with_nul_is_refused_without_echoing_it(make_tenant):
    make_tenant("customer-123")
    value = ANTHROPIC_KEY[:20] + "\x00" + ANTHROPIC_KEY[20:]
    plan = build_deploy_plan(runbook_request(env={"ANTHROPIC_API_KEY": value}))
    assert codes(plan) == {"env.ANTHROPIC_API_KEY": {"env_value_nul"}}
    assert_no_plaintext(json.dumps(plan), value, ANTHROPIC_KEY)


def test_value_too_large_is_refused_without_echoing_it(make_tenant):
    make_tenant("customer-123")
    value = "sk-" + "L" * (32 * 1024)
    plan = build_deploy_plan(runbook_request(env={"ANTHROPIC_API_KEY": value}))
    assert codes(plan) == {"env.ANTHROPIC_API_KEY": {"env_value_size"}}
    assert "L" * 20 not in json.dumps(plan)


HOSTILE = [
    "x\nprivileged: true",
    "x: y",
    "{a: b}",
    "&anchor",
    "*alias",
    '"quote',
    "\\",
    "${OTHER}",
    "ünïcödé",
    "../../etc/passwd",
    "a" * 300,
]


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:30] for v in HOSTILE])
def test_hostile_input_in_every_field_gives_field_named_errors(make_tenant, value):
    make_tenant("customer-123")
    request = DeployRequest(
        tenant=value,
        project_name=value,
        template=value,
        stack_name=value,
        domains=[(value, "demo.customer123.com"), ("webui", value)],
        env={value: "v", "ANTHROPIC_API_KEY": ANTHROPIC_KEY + "\x00" + value},
    )

    plan = build_deploy_plan(request)
    fields = set(errors_by_field(plan))

    assert plan["ok"] is False
    assert {"tenant", "template", "stack_name"} <= fields
    # A project name is sent to Coolify: refused when multi-line, long, or outside Coolify's
    # NAME_PATTERN (app/Support/ValidationPatterns.php).
    refused = "\n" in value or len(value) > 100 or coolify_rules.name_problem(value) is not None
    assert ("project_name" in fields) == refused
    assert "domain.webui" in fields
    assert f"env.{value}" in fields
    assert "env.ANTHROPIC_API_KEY" in fields
    # Names are invalid: nothing is rendered and nothing would be called.
    assert plan["compose"] is None
    assert plan["coolify_calls"] == []
    assert plan["pocketbase"] is None
    assert_no_plaintext(json.dumps(plan), ANTHROPIC_KEY)


@pytest.mark.parametrize("field", ["tenant", "stack_name"])
@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:30] for v in HOSTILE])
def test_one_hostile_name_stops_the_render(make_tenant, field, value):
    make_tenant("customer-123")
    plan = build_deploy_plan(runbook_request(**{field: value}))

    assert field in errors_by_field(plan)
    assert plan["compose"] is None
    assert plan["coolify_calls"] == []


def test_hostile_domain_service_key_is_refused_for_a_known_template(make_tenant):
    make_tenant("customer-123")
    plan = build_deploy_plan(
        runbook_request(domains=[("webui\nprivileged: true", "a.example.com")])
    )
    assert codes(plan) == {"domain.webui\nprivileged: true": {"unknown_service"}}
    assert (
        "privileged"
        not in parse_compose(plan["compose"])["services"]["cf-agent-customer-123-customer-123-main"]
    )


@pytest.mark.parametrize(
    ("domain", "code"),
    [
        ("demo.customer123.com\nprivileged: true", "domain_port"),
        ("demo.customer123.com\nevil.example.com", "domain_chars"),
        ("demo.customer123.com:443", "domain_port"),
        ("*.customer123.com", "domain_wildcard"),
        ("127.0.0.1", "domain_ip"),
        ("localhost", "domain_single_label"),
        ("", "required"),
    ],
)
def test_bad_domains_name_the_service(make_tenant, domain, code):
    make_tenant("customer-123")
    plan = build_deploy_plan(runbook_request(domains=[("webui", domain)]))
    assert codes(plan) == {"domain.webui": {code}}


# --- template versions on stacks -------------------------------------------------------------


def test_a_new_stack_records_the_current_template_version(make_stack):
    stack = make_stack()
    stack.refresh_from_db()
    assert stack.template_version == load_manifest("openclaw-agent").version
    assert stack.template_is_current is True


def test_a_recorded_version_is_kept(make_stack):
    stack = make_stack(template_version="0123456789ab")
    stack.refresh_from_db()
    assert stack.template_version == "0123456789ab"
    assert stack.template_is_current is False


def test_changelist_filters_outdated_stacks(client, viewer, make_stack):
    make_stack("customer-123", "old-stack-x", template_version="0123456789ab")
    make_stack("customer-123", "current-stack-y")
    client.force_login(viewer)

    outdated = client.get(STACK_CHANGELIST, {"template_version_is": "outdated"})
    current = client.get(STACK_CHANGELIST, {"template_version_is": "current"})
    everything = client.get(STACK_CHANGELIST)

    assert outdated.status_code == 200
    page = outdated.content.decode()
    assert "old-stack-x" in page and "current-stack-y" not in page
    assert "(outdated)" in page
    page = current.content.decode()
    assert "current-stack-y" in page and "old-stack-x" not in page
    assert load_manifest("openclaw-agent").version in page
    page = everything.content.decode()
    assert "old-stack-x" in page and "current-stack-y" in page


# --- admin template pages --------------------------------------------------------------------


def test_templates_page_lists_the_templates(client, viewer):
    client.force_login(viewer)
    response = client.get(TEMPLATES_PAGE)

    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    for name in ("openclaw-agent", "telegram-bot", "base-llm"):
        manifest = load_manifest(name)
        assert name in page
        assert manifest.version in page
        for key in manifest.required_env:
            assert f"<code>{key}</code>" in page
        assert template_page(name) in page
    assert page.count(f"all {len(RULES)} rules hold") == 3
    assert "✗" not in page


def test_template_page_shows_the_rendered_preview(client, viewer):
    client.force_login(viewer)
    response = client.get(
        template_page("openclaw-agent"), {"tenant": "customer-9", "stack_name": "demo"}
    )

    assert response.status_code == 200
    page = response.content.decode()
    match = re.search(r'<pre id="rendered-compose"[^>]*>(.*?)</pre>', page, re.S)
    assert match, "no rendered preview"
    compose = parse_compose(html.unescape(match.group(1)))
    webui = compose["services"]["cf-agent-customer-9-demo"]
    assert webui["labels"]["cf.tenant"] == "customer-9"
    assert list(compose["volumes"]) == ["cf-agent-customer-9_demo-data"]
    assert "ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY}" in webui["environment"]
    assert f"All {len(RULES)} hardening rules hold" in page
    assert load_manifest("openclaw-agent").version in page


def test_template_page_shows_a_field_error_for_a_bad_name(client, viewer):
    client.force_login(viewer)
    response = client.get(template_page("openclaw-agent"), {"tenant": "Bad_Slug"})

    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert 'id="rendered-compose"' not in page
    assert re.search(r"<li>tenant: [^<]*lowercase", page)
    assert "stack_name:" not in page


def test_template_page_for_base_llm_shows_both_containers(client, viewer):
    client.force_login(viewer)
    page = html.unescape(client.get(template_page("base-llm")).content.decode())
    assert "cf-agent-<tenant>-<stack>-<service uuid>" in page
    assert "cf-webui-<tenant>-<stack>-<service uuid>" in page
    assert "cf-webui-customer-123-customer-123-main" in page


def test_unknown_template_page_is_404(client, viewer):
    client.force_login(viewer)
    assert client.get(template_page("nope")).status_code == 404


@pytest.mark.parametrize("url", [TEMPLATES_PAGE, template_page("openclaw-agent")])
def test_anonymous_user_is_redirected_to_login(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("persona", ["viewer", "support", "operator", "admin_role", "superuser"])
def test_every_role_can_read_the_template_pages(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(TEMPLATES_PAGE).status_code == 200
    assert client.get(template_page("telegram-bot")).status_code == 200


def test_a_stack_name_too_long_for_its_containers_is_refused_next_to_it(make_tenant):
    """A compose key is a host name on the stack's network: at most 63 characters."""
    make_tenant("customer-123")
    plan = build_deploy_plan(runbook_request(stack_name="s" * 50))
    assert codes(plan) == {"stack_name": {"compose_name_length"}}
    assert "at most 63 characters" in errors_by_field(plan)["stack_name"][0]["message"]
