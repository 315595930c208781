"""Names as the server has them: compose service keys, Coolify's renaming, and the limits.

Coolify 4.3.x (bootstrap/helpers/parsers.php) replaces any `container_name` with
`<compose service key>-<service uuid>` and renames each named volume to
`<service uuid>_<Str::slug(volume)>`. cfadmin's compose keys are `<prefix>-<tenant>-<stack>`, so
`docker ps | grep cf-agent-<tenant>-<stack>` finds a stack; the manifest's keys (`bot`, `llm`,
`webui`) stay cfadmin's own ids.
"""

from __future__ import annotations

import shutil

import pytest

from stacks.catalog import TEMPLATES_DIR
from stacks.compose import (
    DNS_LABEL_MAX,
    UUID_PLACEHOLDER,
    ServerNames,
    TemplateError,
    compose_name_problem,
    compose_service_name,
    compose_service_names,
    coolify_slug,
    load_manifest,
    render_sample,
    render_stack,
    server_names,
    service_key_for,
)

TEMPLATES = ("base-llm", "openclaw-agent", "telegram-bot")
UUID = "k8w4cs0g0skgkgw0o8ockwso"

# --- coolify_slug: Laravel's Str::slug for ASCII -------------------------------------------


@pytest.mark.parametrize(
    ("value", "slug"),
    [
        ("cf-agent-acme_bot1-data", "cf-agent-acme-bot1-data"),
        ("My.Vol", "myvol"),
        ("a@b", "a-at-b"),
        ("a@@b", "a-at-at-b"),
        ("cf-agent-acme-bot1", "cf-agent-acme-bot1"),
        ("UPPER_case", "upper-case"),
        ("a__b", "a-b"),
        ("a-_-b", "a-b"),
        ("a--b", "a-b"),
        ("--a-", "a"),
        ("_a_", "a"),
        ("a b\tc\nd", "a-b-c-d"),
        ("a - b", "a-b"),
        ("x.y_z", "xy-z"),
        ("a/b:c$d{e}", "abcde"),
        ("", ""),
        ("---", ""),
        ("123", "123"),
    ],
)
def test_coolify_slug(value, slug):
    assert coolify_slug(value) == slug


def test_coolify_slug_is_idempotent():
    for value in ("cf-agent-acme_bot1-data", "My.Vol", "a@b", " -x_Y- "):
        assert coolify_slug(coolify_slug(value)) == coolify_slug(value)


# --- compose service keys ------------------------------------------------------------------


@pytest.mark.parametrize("name", TEMPLATES)
def test_compose_keys_contain_the_tenant_and_the_stack(name):
    manifest = load_manifest(name)
    names = compose_service_names(manifest, "acme", "bot1")

    assert set(names) == set(manifest.services)  # keyed by cfadmin's ids
    for key, compose_name in names.items():
        assert compose_name == f"{manifest.services[key].container_prefix}-acme-bot1"
        assert compose_name == compose_service_name(manifest, key, "acme", "bot1")
        # Coolify's logs endpoint finds the container only if slugging leaves the key alone.
        assert coolify_slug(compose_name) == compose_name
    assert len(set(names.values())) == len(names)


def test_the_examples_from_the_brief():
    assert compose_service_name(load_manifest("telegram-bot"), "bot", "acme", "bot1") == (
        "cf-agent-acme-bot1"
    )
    assert compose_service_name(load_manifest("base-llm"), "webui", "acme", "llm1") == (
        "cf-webui-acme-llm1"
    )


def test_an_unknown_service_key_is_refused_naming_the_template():
    with pytest.raises(TemplateError, match=r"telegram-bot has no service 'webui'"):
        compose_service_name(load_manifest("telegram-bot"), "webui", "acme", "bot1")


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_rendered_compose_is_keyed_by_the_compose_names(name):
    manifest = load_manifest(name)
    rendered = render_stack(manifest, tenant="acme", stack_name="bot1")

    assert rendered.service_names == compose_service_names(manifest, "acme", "bot1")
    assert list(rendered.compose["services"]) == list(rendered.service_names.values())
    for service in rendered.compose["services"].values():
        assert "container_name" not in service  # Coolify replaces it: the file sets none


@pytest.mark.parametrize("name", TEMPLATES)
def test_service_key_for_reverses_the_mapping(name):
    manifest = load_manifest(name)
    for key, compose_name in compose_service_names(manifest, "acme", "bot1").items():
        assert service_key_for(manifest, "acme", "bot1", compose_name) == key
    for key in manifest.services:
        # The manifest key is cfadmin's id, not a compose key.
        assert service_key_for(manifest, "acme", "bot1", key) is None
    some = next(iter(compose_service_names(manifest, "acme", "bot1").values()))
    assert service_key_for(manifest, "acme", "bot2", some) is None  # another stack's
    assert service_key_for(manifest, "other", "bot1", some) is None  # another tenant's
    assert service_key_for(manifest, "acme", "bot1", f"{some}-{UUID}") is None  # a container


# --- inter-service references --------------------------------------------------------------


def test_base_llm_reaches_ollama_by_its_compose_key():
    rendered = render_stack(load_manifest("base-llm"), tenant="acme", stack_name="llm1")
    llm, webui = rendered.service_names["llm"], rendered.service_names["webui"]
    assert llm == "cf-agent-acme-llm1"
    service = rendered.compose["services"][webui]

    assert "OLLAMA_BASE_URL=http://cf-agent-acme-llm1:11434" in service["environment"]
    assert service["depends_on"] == {llm: {"condition": "service_healthy"}}
    # Quoted like every other value.
    assert '"OLLAMA_BASE_URL=http://cf-agent-acme-llm1:11434"' in rendered.text
    assert '  "cf-agent-acme-llm1":\n' in rendered.text
    assert "http://llm:" not in rendered.text


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_template_asks_coolify_for_a_generated_url(name):
    # SERVICE_URL_<NAME>[_<PORT>] / SERVICE_FQDN_… make Coolify generate a public sslip.io URL
    # whenever the app has no domain; domains come only from the API's `urls`.
    manifest = load_manifest(name)
    rendered = render_sample(manifest)
    for magic in ("SERVICE_URL_", "SERVICE_FQDN_"):
        assert magic not in rendered.text  # neither a key nor a ${…} reference
    for service in rendered.compose["services"].values():
        for entry in service.get("environment") or []:
            key = str(entry).split("=", 1)[0]
            assert not key.startswith(("SERVICE_URL_", "SERVICE_FQDN_"))


# --- what the server has -------------------------------------------------------------------

EXPECTED_SERVER_NAMES = {
    "openclaw-agent": (
        [f"cf-agent-acme-bot1-{UUID}"],
        [f"{UUID}_cf-agent-acme-bot1-data"],
    ),
    "telegram-bot": (
        [f"cf-agent-acme-bot1-{UUID}"],
        [f"{UUID}_cf-agent-acme-bot1-data"],
    ),
    "base-llm": (
        [f"cf-agent-acme-bot1-{UUID}", f"cf-webui-acme-bot1-{UUID}"],
        [f"{UUID}_cf-agent-acme-bot1-models", f"{UUID}_cf-agent-acme-bot1-webui"],
    ),
}


@pytest.mark.parametrize("name", TEMPLATES)
def test_server_names_for_each_template(name):
    containers, volumes = EXPECTED_SERVER_NAMES[name]
    names = server_names(load_manifest(name), "acme", "bot1", UUID)

    assert names == ServerNames(containers=containers, volumes=volumes)
    # `docker ps | grep cf-agent-acme-bot1` and `docker volume ls | grep …` find the stack.
    assert any("cf-agent-acme-bot1" in c for c in names.containers)
    assert all("cf-agent-acme-bot1-" in v for v in names.volumes)


@pytest.mark.parametrize("name", TEMPLATES)
def test_server_names_follow_the_rendered_compose(name):
    # Coolify's renaming applied to the file cfadmin sends gives the same names.
    manifest = load_manifest(name)
    rendered = render_stack(manifest, tenant="acme", stack_name="bot1")
    names = server_names(manifest, "acme", "bot1", UUID)

    assert names.containers == [f"{key}-{UUID}" for key in rendered.compose["services"]]
    assert names.volumes == [f"{UUID}_{coolify_slug(v)}" for v in rendered.compose["volumes"]]


@pytest.mark.parametrize("name", TEMPLATES)
def test_server_names_without_a_uuid_show_a_placeholder(name):
    assert UUID_PLACEHOLDER == "<service uuid>"
    containers, volumes = EXPECTED_SERVER_NAMES[name]
    names = server_names(load_manifest(name), "acme", "bot1", "")

    assert names.containers == [c.replace(UUID, UUID_PLACEHOLDER) for c in containers]
    assert names.volumes == [v.replace(UUID, UUID_PLACEHOLDER) for v in volumes]


def test_server_names_are_frozen():
    names = server_names(load_manifest("telegram-bot"), "acme", "bot1", UUID)
    with pytest.raises(AttributeError):
        names.containers = []  # type: ignore[misc]


def test_the_template_page_data_shows_the_server_names():
    services = load_manifest("base-llm").as_dict()["services"]
    assert services["llm"]["compose_service"] == "cf-agent-<tenant>-<stack>"
    assert services["webui"]["container"] == "cf-webui-<tenant>-<stack>-<service uuid>"
    assert services["llm"]["volumes"] == {
        "models": "<service uuid>_cf-agent-<tenant>-<stack>-models"
    }


# --- the 63-character limit ----------------------------------------------------------------


def name_of_length(length: int) -> str:
    return ("s" + "0123456789" * 7)[:length]


@pytest.mark.parametrize("name", TEMPLATES)
def test_a_63_character_compose_name_is_accepted(name):
    manifest = load_manifest(name)
    longest = max(len(s.container_prefix) for s in manifest.services.values())
    stack = name_of_length(DNS_LABEL_MAX - longest - len("-acme-"))
    names = compose_service_names(manifest, "acme", stack)

    assert max(len(n) for n in names.values()) == DNS_LABEL_MAX == 63
    assert compose_name_problem(manifest, "acme", stack) is None


@pytest.mark.parametrize("name", TEMPLATES)
def test_a_64_character_compose_name_is_refused_naming_the_limit(name):
    manifest = load_manifest(name)
    longest = max(len(s.container_prefix) for s in manifest.services.values())
    room = DNS_LABEL_MAX - longest - len("-acme-")
    stack = name_of_length(room + 1)

    problem = compose_name_problem(manifest, "acme", stack)

    assert problem is not None
    assert "63 characters" in problem and "64 characters" in problem
    assert "DNS label" in problem
    assert name in problem
    assert f"-acme-{stack}" in problem  # the name it would have
    assert f"at most {room} characters" in problem  # what to do


def test_a_tenant_too_long_for_any_stack_name_says_so():
    problem = compose_name_problem(load_manifest("telegram-bot"), name_of_length(60), "a")
    assert problem is not None and "tenant" in problem and "63" in problem


@pytest.mark.parametrize(("tenant", "stack"), [("a--b", "bot1"), ("acme", "Bot1"), ("acme", "b_1")])
def test_a_name_slugging_would_change_is_refused(tenant, stack):
    problem = compose_name_problem(load_manifest("telegram-bot"), tenant, stack)
    assert problem is not None
    assert "lowercase letters, digits and single hyphens" in problem


def test_ordinary_names_have_no_problem():
    for name in TEMPLATES:
        assert (
            compose_name_problem(load_manifest(name), "customer-123", "customer-123-main") is None
        )


# --- manifests: the prefixes the keys start with -------------------------------------------


def copy_template(name: str, root):
    shutil.copytree(TEMPLATES_DIR / name, root / name)
    return root / name / "manifest.yaml"


def test_two_services_with_one_prefix_are_refused(tmp_path):
    manifest = copy_template("base-llm", tmp_path)
    manifest.write_text(
        manifest.read_text().replace("container_prefix: cf-webui", "container_prefix: cf-agent")
    )
    with pytest.raises(TemplateError, match=r"base-llm: services llm and webui share"):
        load_manifest("base-llm", tmp_path)


@pytest.mark.parametrize("prefix", ["CF-agent", "cf_agent", "cf--agent", "-cf", '""'])
def test_a_prefix_slugging_would_change_is_refused(tmp_path, prefix):
    manifest = copy_template("telegram-bot", tmp_path)
    manifest.write_text(
        manifest.read_text().replace("container_prefix: cf-agent", f"container_prefix: {prefix}")
    )
    with pytest.raises(TemplateError, match=r"telegram-bot, service bot: container_prefix"):
        load_manifest("telegram-bot", tmp_path)
