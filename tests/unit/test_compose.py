"""Stack templates: manifests, versions, sandboxed rendering and the structural check.

Every template is rendered for valid names and its parsed compose compared with its manifest.
Hostile names are passed straight to render_stack (no validation in front) and must either be
refused or land in the file as plain strings, leaving the structure exactly as it was.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from stacks.catalog import TEMPLATES_DIR, template_names
from stacks.compose import (
    COMPOSE_FILE,
    EnvReference,
    Manifest,
    RenderError,
    TemplateError,
    check_structure,
    compose_service_names,
    load_manifest,
    parse_compose,
    render_sample,
    render_stack,
    stack_labels,
    volume_name,
)

TENANT = "customer-123"
STACK = "customer-123-main"
TEMPLATES = ("base-llm", "openclaw-agent", "telegram-bot")
# A realistic-looking fake secret; it must never reach a compose file.
SECRET = "sk-test-" + "Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lm" + "9Nb8"

# What each template must produce: service -> container prefix.
EXPECTED_SERVICES = {
    "openclaw-agent": {"webui": "cf-agent"},
    "telegram-bot": {"bot": "cf-agent"},
    "base-llm": {"llm": "cf-agent", "webui": "cf-webui"},
}
EXPECTED_EXPOSED = {
    "openclaw-agent": {"webui": 18789},
    "telegram-bot": {},
    "base-llm": {"webui": 8080},
}

# Compose service keys: <container_prefix>-<tenant>-<stack>.
AGENT = f"cf-agent-{TENANT}-{STACK}"
WEBUI = f"cf-webui-{TENANT}-{STACK}"  # base-llm's web UI

ENV_REF = re.compile(r"^([A-Z_][A-Z0-9_]*)=\$\{([A-Z_][A-Z0-9_]*)\}$")


# --- helpers ---------------------------------------------------------------------------------


def copy_template(name: str, dest: Path) -> Path:
    """A copy of a shipped template in `dest/<name>`, to edit and load from `dest`."""
    folder = dest / name
    shutil.copytree(TEMPLATES_DIR / name, folder)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def with_source(manifest: Manifest, source: str) -> Manifest:
    return dataclasses.replace(manifest, compose_source=source)


def render(name: str, env_keys: tuple[str, ...] | list[str] = (), **names: str) -> Any:
    names.setdefault("tenant", TENANT)
    names.setdefault("stack_name", STACK)
    return render_stack(load_manifest(name), env_keys=env_keys, **names)


def service_of(rendered: Any, key: str) -> dict[str, Any]:
    """A rendered service by the manifest's key (the compose is keyed by compose names)."""
    return rendered.compose["services"][rendered.service_names[key]]


def env_refs(service: dict[str, Any]) -> dict[str, str]:
    """The `KEY=${KEY}` entries of a service's environment list."""
    refs = {}
    for entry in service.get("environment") or []:
        match = ENV_REF.match(entry)
        if match and not match.group(2).startswith("SERVICE_"):
            refs[match.group(1)] = entry
    return refs


def shape(value: Any) -> Any:
    """The structure of parsed YAML: mapping keys and list lengths, leaves reduced to types."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def service_shape(service: Any) -> Any:
    # depends_on is keyed by other services' compose keys, which carry the names too.
    if isinstance(service, dict) and isinstance(service.get("depends_on"), dict):
        service = {**service, "depends_on": list(service["depends_on"].values())}
    return shape(service)


def compose_shape(compose: dict[str, Any]) -> Any:
    # Service and top-level volume keys carry the (hostile) names; their number is what matters.
    return {
        "top": sorted(compose),
        "services": [service_shape(s) for s in compose["services"].values()],
        "volumes": [shape(v) for v in (compose.get("volumes") or {}).values()],
    }


def all_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*all_strings(k), *all_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in all_strings(item)]
    return [value] if isinstance(value, str) else []


def find_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(find_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(find_key(v, key) for v in value)
    return False


def structure_context(manifest: Manifest, tenant: str, stack_name: str) -> dict[str, Any]:
    return {
        "service_names": compose_service_names(manifest, tenant, stack_name),
        "labels": stack_labels(manifest, tenant, stack_name),
        "volumes": {
            p: volume_name(tenant, stack_name, p)
            for s in manifest.services.values()
            for p in s.volumes
        },
    }


# --- catalog and manifests -------------------------------------------------------------------


def test_the_three_templates_ship():
    assert template_names() == sorted(TEMPLATES)


@pytest.mark.parametrize("name", TEMPLATES)
def test_manifest_describes_the_template(name):
    manifest = load_manifest(name)

    assert manifest.name == name
    assert manifest.description
    assert set(manifest.services) == set(EXPECTED_SERVICES[name])
    assert manifest.exposed == EXPECTED_EXPOSED[name]
    for spec in manifest.services.values():
        assert spec.container_prefix == EXPECTED_SERVICES[name][spec.name]
        assert set(spec.limits) >= {"memory", "cpus", "pids"}
        assert spec.user or spec.root_required
        assert not spec.image.endswith(":latest") and ":" in spec.image.rsplit("/", 1)[-1]
        # Every key a service reads is one the manifest lets the operator pass.
        assert set(spec.env) <= set(manifest.env_keys)


def test_manifests_env_keys():
    assert load_manifest("openclaw-agent").required_env == ("ANTHROPIC_API_KEY",)
    assert load_manifest("openclaw-agent").optional_env == ("TELEGRAM_BOT_TOKEN",)
    assert set(load_manifest("telegram-bot").required_env) == {
        "TELEGRAM_BOT_TOKEN",
        "ANTHROPIC_API_KEY",
    }
    assert load_manifest("base-llm").required_env == ()
    assert load_manifest("base-llm").optional_env == ("OPENAI_API_KEY",)


def test_unknown_template_is_refused_naming_the_choices():
    with pytest.raises(TemplateError, match=r"unknown template 'nope'.*openclaw-agent"):
        load_manifest("nope")


def test_a_manifest_without_limits_is_refused(tmp_path):
    folder = copy_template("openclaw-agent", tmp_path)
    edit(folder / "manifest.yaml", "limits: {memory: 2g, cpus: 1.0, pids: 512}", "limits: {}")
    with pytest.raises(TemplateError, match=r"openclaw-agent.*limits.memory"):
        load_manifest("openclaw-agent", tmp_path)


def test_a_manifest_with_a_duplicate_key_is_refused(tmp_path):
    folder = copy_template("openclaw-agent", tmp_path)
    edit(folder / "manifest.yaml", "    read_only: true\n", "    read_only: true\n    port: 1\n")
    # TemplateError (naming the template) is what callers such as audit_templates catch.
    with pytest.raises(TemplateError, match=r"openclaw-agent.*duplicate key 'port'"):
        load_manifest("openclaw-agent", tmp_path)


def test_a_manifest_that_is_not_yaml_is_refused_naming_the_template(tmp_path):
    folder = copy_template("openclaw-agent", tmp_path)
    (folder / "manifest.yaml").write_text("name: openclaw-agent\nservices: {webui: [\n")
    with pytest.raises(TemplateError, match="openclaw-agent"):
        load_manifest("openclaw-agent", tmp_path)


# --- versions --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TEMPLATES)
def test_version_is_12_hex_and_stable_across_loads(name, tmp_path):
    version = load_manifest(name).version
    assert re.fullmatch(r"[0-9a-f]{12}", version)

    load_manifest.cache_clear()
    assert load_manifest(name).version == version
    # Same files elsewhere: same version (it is derived from the content, not the path).
    copy_template(name, tmp_path)
    assert load_manifest(name, tmp_path).version == version


def test_versions_differ_between_templates():
    versions = {load_manifest(name).version for name in TEMPLATES}
    assert len(versions) == len(TEMPLATES)


def test_version_changes_when_the_compose_text_changes(tmp_path):
    shipped = load_manifest("openclaw-agent").version
    folder = copy_template("openclaw-agent", tmp_path)
    edit(folder / COMPOSE_FILE, "interval: 30s", "interval: 31s")

    changed = load_manifest("openclaw-agent", tmp_path).version

    assert re.fullmatch(r"[0-9a-f]{12}", changed)
    assert changed != shipped


def test_version_changes_when_the_manifest_changes(tmp_path):
    shipped = load_manifest("openclaw-agent").version
    folder = copy_template("openclaw-agent", tmp_path)
    edit(folder / "manifest.yaml", "pids: 512", "pids: 500")

    assert load_manifest("openclaw-agent", tmp_path).version != shipped


def test_rendered_labels_carry_the_version():
    rendered = render("openclaw-agent")
    labels = service_of(rendered, "webui")["labels"]
    assert labels["cf.template-version"] == load_manifest("openclaw-agent").version


# --- rendering valid inputs ------------------------------------------------------------------


@pytest.mark.parametrize("name", TEMPLATES)
def test_each_template_renders_as_its_manifest_says(name):
    manifest = load_manifest(name)
    rendered = render(name, env_keys=manifest.env_keys)
    compose = rendered.compose

    assert rendered.findings == []
    assert set(compose) == {"services", "volumes"}
    assert set(compose["services"]) == {
        f"{prefix}-{TENANT}-{STACK}" for prefix in EXPECTED_SERVICES[name].values()
    }
    assert rendered.service_names == {
        key: f"{prefix}-{TENANT}-{STACK}" for key, prefix in EXPECTED_SERVICES[name].items()
    }
    expected_volumes = {
        f"cf-agent-{TENANT}_{STACK}-{purpose}"
        for spec in manifest.services.values()
        for purpose in spec.volumes
    }
    assert set(compose["volumes"]) == expected_volumes
    for service_name, prefix in EXPECTED_SERVICES[name].items():
        spec = manifest.services[service_name]
        service = compose["services"][f"{prefix}-{TENANT}-{STACK}"]
        # Coolify replaces container_name with `<compose key>-<uuid>`: the file sets none.
        assert "container_name" not in service
        assert service["image"] == spec.image
        limits = service["deploy"]["resources"]["limits"]
        assert limits["memory"] == spec.limits["memory"]
        assert limits["cpus"] == spec.limits["cpus"]
        assert service["pids_limit"] == spec.limits["pids"]
        assert service["labels"] == {
            "cf.tenant": TENANT,
            "cf.stack": STACK,
            "cf.template": name,
            "cf.template-version": manifest.version,
        }
        mounts = service["volumes"]
        for purpose, path in spec.volumes.items():
            assert f"cf-agent-{TENANT}_{STACK}-{purpose}:{path}" in mounts
        assert len(mounts) == len(spec.volumes)
        assert env_refs(service) == {key: f"{key}=${{{key}}}" for key in spec.env}
        if spec.user:
            assert str(service["user"]) == spec.user


def test_volume_names_separate_tenant_and_stack_with_an_underscore():
    # "_" cannot occur in a slug, so no tenant/stack split can produce another pair's name.
    assert volume_name("a", "b-c", "data") == "cf-agent-a_b-c-data"
    assert volume_name("a-b", "c", "data") == "cf-agent-a-b_c-data"
    assert volume_name("a", "b-c", "data") != volume_name("a-b", "c", "data")
    # The runbook's `docker volume ls | grep cf-agent-<customer>` still finds the data.
    assert volume_name(TENANT, STACK, "data").startswith(f"cf-agent-{TENANT}")


def test_base_llm_has_an_agent_and_a_webui_service():
    compose = render("base-llm").compose
    assert list(compose["services"]) == [AGENT, WEBUI]


def test_limits_are_the_manifests_exact_values():
    llm = service_of(render("base-llm"), "llm")
    assert llm["deploy"]["resources"]["limits"] == {
        "memory": "8g",
        "cpus": 4.0,
    }
    assert llm["pids_limit"] == 1024
    bot = service_of(render("telegram-bot"), "bot")
    assert bot["deploy"]["resources"]["limits"] == {"memory": "1g", "cpus": 0.5}
    assert bot["pids_limit"] == 256


def test_only_provided_env_keys_are_referenced():
    only_required = render("openclaw-agent", env_keys=["ANTHROPIC_API_KEY"])
    service = service_of(only_required, "webui")

    assert env_refs(service) == {"ANTHROPIC_API_KEY": "ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY}"}
    assert "TELEGRAM_BOT_TOKEN" not in only_required.text

    both = render("openclaw-agent", env_keys=["ANTHROPIC_API_KEY", "TELEGRAM_BOT_TOKEN"])
    assert set(env_refs(service_of(both, "webui"))) == {
        "ANTHROPIC_API_KEY",
        "TELEGRAM_BOT_TOKEN",
    }


def test_optional_key_not_provided_is_absent_in_base_llm():
    without = render("base-llm")
    assert "OPENAI_API_KEY" not in without.text
    with_key = render("base-llm", env_keys=["OPENAI_API_KEY"])
    assert "OPENAI_API_KEY=${OPENAI_API_KEY}" in service_of(with_key, "webui")["environment"]
    assert "OPENAI_API_KEY" not in str(service_of(with_key, "llm"))


def test_env_keys_the_template_does_not_use_are_dropped():
    # Only names reach a template; even a value passed by mistake as a "key" is not written.
    rendered = render("openclaw-agent", env_keys=["ANTHROPIC_API_KEY", "UNUSED_KEY", SECRET])
    assert "UNUSED_KEY" not in rendered.text
    assert SECRET not in rendered.text
    assert set(env_refs(service_of(rendered, "webui"))) == {"ANTHROPIC_API_KEY"}


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_secret_value_in_the_rendered_compose(name):
    manifest = load_manifest(name)
    rendered = render_sample(manifest)
    for service in rendered.compose["services"].values():
        for entry in service.get("environment") or []:
            key, _, value = str(entry).partition("=")
            if key in manifest.env_keys:
                # The value is a reference Coolify fills in, never a literal.
                assert value == f"${{{key}}}"
    assert SECRET not in rendered.text
    assert "sk-" not in rendered.text


@pytest.mark.parametrize("name", TEMPLATES)
def test_render_sample_renders_every_env_key_with_no_findings(name):
    manifest = load_manifest(name)
    rendered = render_sample(manifest)
    assert rendered.findings == []
    referenced = set()
    for service in rendered.compose["services"].values():
        referenced |= set(env_refs(service))
    assert referenced == set(manifest.env_keys)


def test_env_entries_are_references_with_a_single_dollar():
    rendered = render("openclaw-agent", env_keys=["ANTHROPIC_API_KEY"])
    assert '"ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY}"' in rendered.text
    assert "$${ANTHROPIC_API_KEY}" not in rendered.text


def test_env_reference_renders_as_a_compose_reference():
    assert str(EnvReference("ANTHROPIC_API_KEY")) == "ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY}"
    assert str(EnvReference("_X1")) == "_X1=${_X1}"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "lower_case",
        "1STARTS_WITH_DIGIT",
        "HAS-DASH",
        "HAS SPACE",
        "KEY=${OTHER}",
        "A}${B",
        "KEY\n",
        "KEY\nprivileged: true",
        "ÜMLAUT",
        SECRET,
    ],
)
def test_env_reference_refuses_a_name_that_is_not_an_env_var(key):
    with pytest.raises(RenderError, match="not an environment variable name"):
        EnvReference(key)


def test_a_bad_env_key_in_a_manifest_is_refused_at_render():
    manifest = load_manifest("openclaw-agent")
    spec = dataclasses.replace(manifest.services["webui"], env=("bad-key",))
    bad = dataclasses.replace(manifest, services={"webui": spec})
    with pytest.raises(RenderError, match="not an environment variable name: 'bad-key'"):
        render_stack(bad, tenant=TENANT, stack_name=STACK, env_keys=["bad-key"])


def test_a_dollar_in_a_template_string_value_is_escaped_for_compose():
    # Only EnvReference emits a `$` compose interpolates; any other value is written as `$$`.
    manifest = load_manifest("openclaw-agent")
    source = manifest.compose_source.replace('- "HOME=/home/node"', '- {{ "HOME=${EVIL}" }}')
    assert source != manifest.compose_source
    rendered = render_stack(with_source(manifest, source), tenant=TENANT, stack_name=STACK)
    assert '"HOME=$${EVIL}"' in rendered.text
    assert "HOME=$${EVIL}" in service_of(rendered, "webui")["environment"]
    assert "${EVIL}" not in rendered.text.replace("$${EVIL}", "")


@pytest.mark.parametrize("field", ["tenant", "stack_name"])
def test_a_dollar_in_a_hostile_name_is_written_as_a_double_dollar(field):
    value = "x${OTHER}$HOME"
    names = {"tenant": TENANT, "stack_name": STACK, field: value}
    rendered = render_stack(load_manifest("openclaw-agent"), **names)
    escaped = "x$${OTHER}$$HOME"
    assert json.dumps(escaped) in rendered.text  # compose reads `$$` as a literal `$`
    assert "${OTHER}" not in rendered.text.replace("$${OTHER}", "")
    labels = next(iter(rendered.compose["services"].values()))["labels"]
    assert labels["cf.tenant" if field == "tenant" else "cf.stack"] == escaped


def test_rendering_is_deterministic():
    assert render("base-llm").text == render("base-llm").text


# --- StrictUndefined and the sandbox ---------------------------------------------------------


def test_undefined_variable_raises_render_error_naming_the_template(tmp_path):
    folder = copy_template("openclaw-agent", tmp_path)
    edit(folder / COMPOSE_FILE, "init: true", "init: {{ not_a_variable }}")
    manifest = load_manifest("openclaw-agent", tmp_path)

    with pytest.raises(RenderError, match=r"openclaw-agent.*not_a_variable"):
        render_stack(manifest, tenant=TENANT, stack_name=STACK)


def test_undefined_attribute_raises_render_error():
    manifest = load_manifest("telegram-bot")
    source = manifest.compose_source.replace(
        "{{ services.bot.image }}", "{{ services.bot.no_such }}"
    )
    assert source != manifest.compose_source
    with pytest.raises(RenderError, match=r"telegram-bot.*no_such"):
        render_stack(with_source(manifest, source), tenant=TENANT, stack_name=STACK)


def test_undefined_loop_source_raises_render_error():
    manifest = load_manifest("telegram-bot")
    source = manifest.compose_source.replace("env_entries.bot", "env_entries.nobody")
    assert source != manifest.compose_source
    with pytest.raises(RenderError, match=r"telegram-bot.*nobody"):
        render_stack(with_source(manifest, source), tenant=TENANT, stack_name=STACK)


def test_the_old_env_keys_context_variable_is_gone():
    manifest = load_manifest("telegram-bot")
    source = manifest.compose_source.replace("env_entries.bot", "env_keys.bot")
    with pytest.raises(RenderError, match=r"telegram-bot.*env_keys"):
        render_stack(with_source(manifest, source), tenant=TENANT, stack_name=STACK)


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ tenant.__class__ }}",
        "{{ labels.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ range.__self__ }}",
        "{{ labels.update({'x': 'y'}) }}",
        "{{ labels.clear() }}",
        "{% include 'compose.yml.j2' %}",
        "{% import 'os' as os %}",
        "{{ range(100000000) | list | length }}",
    ],
)
def test_sandbox_refuses_reaching_python_internals(expression):
    manifest = load_manifest("openclaw-agent")
    source = f"# {expression}\n" + manifest.compose_source

    with pytest.raises(RenderError):
        render_stack(with_source(manifest, source), tenant=TENANT, stack_name=STACK)


def test_a_mapping_or_none_cannot_be_rendered_as_raw_text():
    # Only quoted scalars reach the YAML: a dict rendered raw could add keys.
    manifest = load_manifest("openclaw-agent")
    for expression in ("{{ labels }}", "{{ services.webui }}", "{{ none }}"):
        source = manifest.compose_source.replace("init: true", f"init: {expression}")
        with pytest.raises(RenderError):
            render_stack(with_source(manifest, source), tenant=TENANT, stack_name=STACK)


# --- hostile names, passed straight to render_stack ------------------------------------------

HOSTILE = [
    "x\nprivileged: true",
    "x\n    privileged: true",
    "x\n  evil:\n    image: alpine\n    privileged: true",
    "x\nservices:\n  evil: {privileged: true}",
    "x: y",
    "{a: b}",
    "[a, b]",
    "&anchor x",
    "*alias",
    "x\nlabels: &a {privileged: true}\nother: *a",
    '"quote',
    "'single",
    '" \nprivileged: true\n"',
    "\\",
    '\\n\\"',
    "${OTHER}",
    "$${OTHER}",
    "!!python/object/apply:os.system ['id']",
    "# comment",
    "- item",
    "| block",
    "> folded",
    "x\r\nprivileged: true",
    "x\x85privileged: true",
    "x\u2028privileged: true",
    "\x00",
    "\ufeffbom",
    "ünïcödé-ü",
    "😀",
    "\ud800",
    "",
    " ",
    "a" * 300,
]


@pytest.mark.parametrize("field", ["tenant", "stack_name"])
@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:40] for v in HOSTILE])
def test_hostile_names_cannot_change_the_structure(name, field, value):
    manifest = load_manifest(name)
    benign = render_sample(manifest)
    names = {"tenant": TENANT, "stack_name": STACK, field: value}

    try:
        rendered = render_stack(manifest, env_keys=manifest.env_keys, **names)
    except RenderError:
        return  # refused: fine

    compose = rendered.compose
    escaped = value.replace("$", "$$")  # compose reads `$$` as a literal `$`
    assert compose_shape(compose) == compose_shape(benign.compose)
    assert not find_key(compose, "privileged")
    assert not find_key(compose, "evil")
    assert not find_key(compose, "a")
    assert rendered.findings == []
    assert rendered.service_names == compose_service_names(manifest, **names)
    for key, compose_key in rendered.service_names.items():
        service = compose["services"][compose_key.replace("$", "$$")]
        labels = service["labels"]
        prefix = manifest.services[key].container_prefix
        # The value is there, whole, as a plain string: in the labels and the service's key.
        if field == "tenant":
            assert labels["cf.tenant"] == escaped
            assert labels["cf.stack"] == STACK
            assert compose_key == f"{prefix}-{value}-{STACK}"
        else:
            assert labels["cf.stack"] == escaped
            assert compose_key == f"{prefix}-{TENANT}-{value}"
        assert "container_name" not in service
        assert set(service.get("depends_on") or {}) <= set(compose["services"])
        assert labels["cf.template"] == name
    assert all(isinstance(s, str) for s in all_strings(compose))


@pytest.mark.parametrize("value", ["x\nprivileged: true", "x: y", "{a: b}", "*alias"])
def test_hostile_names_are_quoted_in_the_text(value):
    rendered = render("openclaw-agent", tenant=value, stack_name=value)
    assert "\nprivileged" not in rendered.text
    assert "privileged:" not in [line.strip()[:11] for line in rendered.text.splitlines()]


# --- YAML parsing and the structural check ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "services: {}\nservices: {}\n",
        "services:\n  a:\n    image: x\n    image: y\n",
        "services:\n  a:\n    privileged: false\n    privileged: true\n",
        "services:\n  a: {labels: {k: 1, k: 2}}\n",
        "services:\n  a:\n    image: x\n  a:\n    image: y\n",
    ],
)
def test_duplicate_keys_are_refused(text):
    with pytest.raises(RenderError, match="duplicate key"):
        parse_compose(text)


def test_a_duplicate_key_a_template_renders_is_refused():
    manifest = load_manifest("openclaw-agent")
    source = manifest.compose_source.replace(
        "    init: true\n", "    init: true\n    init: false\n"
    )
    with pytest.raises(RenderError, match="duplicate key 'init'"):
        render_stack(with_source(manifest, source), tenant=TENANT, stack_name=STACK)


@pytest.mark.parametrize("text", ["", "just a string", "- a\n- b\n", "services: [a]\n", "{a: ["])
def test_parse_compose_refuses_non_compose(text):
    with pytest.raises(RenderError):
        parse_compose(text)


def test_parse_compose_refuses_python_tags():
    with pytest.raises(RenderError):
        parse_compose("services: {}\nx: !!python/object/apply:os.system ['id']\n")


def test_parse_compose_keeps_merge_keys_working():
    compose = parse_compose("x: &a {k: 1}\nservices:\n  s:\n    <<: *a\n    j: 2\n")
    assert compose["services"]["s"] == {"k": 1, "j": 2}


def test_check_structure_accepts_the_rendered_compose():
    manifest = load_manifest("base-llm")
    compose = render_sample(manifest).compose
    check_structure(manifest, compose, structure_context(manifest, TENANT, STACK))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(networks={"host": {}}), "unexpected top-level keys"),
        (lambda c: c.update(secrets={}), "unexpected top-level keys"),
        (lambda c: c["services"][WEBUI].update(image="alpine:3.20"), "image 'alpine:3.20'"),
        (lambda c: c["services"].pop(WEBUI), "services"),
        (lambda c: c["services"].update(extra={"image": "alpine:3.20"}), "services"),
        # The manifest's key is cfadmin's id, not a compose key.
        (lambda c: c["services"].update(webui=c["services"].pop(WEBUI)), "services"),
        (
            lambda c: c["services"][WEBUI].update(container_name="cf-agent-other"),
            "container_name",
        ),
        (lambda c: c["services"][WEBUI].update(container_name=WEBUI), "container_name"),
        (lambda c: c["services"][AGENT]["labels"].pop("cf.tenant"), "labels"),
        (lambda c: c["services"][AGENT]["labels"].update({"cf.tenant": "x"}), "labels"),
        (lambda c: c["volumes"].update({"cf-agent-other-main-models": {}}), "volumes"),
        (lambda c: c.pop("volumes"), "volumes"),
    ],
    ids=[
        "extra-top-level",
        "secrets-top-level",
        "changed-image",
        "missing-service",
        "extra-service",
        "manifest-key",
        "container-name",
        "container-name-as-coolify",
        "label-missing",
        "label-changed",
        "extra-volume",
        "no-volumes",
    ],
)
def test_check_structure_refuses_a_changed_compose(change, message):
    manifest = load_manifest("base-llm")
    compose = parse_compose(render_sample(manifest).text)
    change(compose)

    with pytest.raises(RenderError, match=f"base-llm.*{re.escape(message)}"):
        check_structure(manifest, compose, structure_context(manifest, TENANT, STACK))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "volumes:\n  {{ volumes.data }}: {}",
            "networks: {}\nvolumes:\n  {{ volumes.data }}: {}",
            "top-level",
        ),
        (
            "image: {{ services.webui.image }}",
            'image: "ghcr.io/openclaw/openclaw:2026.3.9"',
            "image",
        ),
        ("services:\n  {{ service_names.webui }}:", "services:\n  web:", "services"),
    ],
    ids=["extra-top-level", "changed-image", "renamed-service"],
)
def test_render_refuses_a_template_that_strays_from_its_manifest(tmp_path, old, new, message):
    folder = copy_template("openclaw-agent", tmp_path)
    edit(folder / COMPOSE_FILE, old, new)
    manifest = load_manifest("openclaw-agent", tmp_path)

    with pytest.raises(RenderError, match=f"openclaw-agent.*{message}"):
        render_stack(manifest, tenant=TENANT, stack_name=STACK)
