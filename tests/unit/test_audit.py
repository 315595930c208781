"""The hardening audit: each rule catches a deliberately bad compose file, and the command.

Every case starts from a good parsed compose (a shipped template rendered for sample names),
breaks exactly one thing, and expects a finding with that exact rule, naming the template and
the service, with the reason.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from stacks.catalog import TEMPLATES_DIR
from stacks.compose import (
    COMPOSE_FILE,
    RULES,
    Finding,
    audit_compose,
    audit_service,
    load_manifest,
    render_sample,
)

TEMPLATES = ("base-llm", "openclaw-agent", "telegram-bot")
# The service the cases break: openclaw-agent's webui runs non-root with a read-only root.
TEMPLATE = "openclaw-agent"
SERVICE = "webui"


def good_service(template: str = TEMPLATE, service: str = SERVICE) -> dict[str, Any]:
    rendered = render_sample(load_manifest(template))
    return copy.deepcopy(rendered.compose["services"][rendered.service_names[service]])


def good_compose(template: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A rendered compose (keyed by compose names) and its manifest key -> compose key map."""
    rendered = render_sample(load_manifest(template))
    return copy.deepcopy(rendered.compose), rendered.service_names


def limits(service: dict[str, Any]) -> dict[str, Any]:
    return service["deploy"]["resources"]["limits"]


def rules_of(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


# --- each rule against a good compose broken in one place -----------------------------------

Break = Callable[[dict[str, Any]], None]


def _set(**values: Any) -> Break:
    return lambda s: s.update(values)


def _drop(key: str) -> Break:
    return lambda s: s.pop(key)


def _mount(entry: Any) -> Break:
    return lambda s: s["volumes"].append(entry)


def _security_opt(option: str) -> Break:
    # Added beside no-new-privileges, so only the new option can be at fault.
    return lambda s: s["security_opt"].append(option)


CASES: list[tuple[str, str, Break]] = [
    ("no-privileged", "privileged-true", _set(privileged=True)),
    ("no-privileged", "privileged-string", _set(privileged="true")),
    ("cap-drop-all", "cap_drop-missing", _drop("cap_drop")),
    ("cap-drop-all", "cap_drop-partial", _set(cap_drop=["NET_RAW"])),
    ("cap-drop-all", "cap_drop-empty", _set(cap_drop=[])),
    ("cap-add-justified", "cap_add-sys_admin", _set(cap_add=["SYS_ADMIN"])),
    ("cap-add-justified", "cap_add-cap_prefix", _set(cap_add=["CAP_NET_ADMIN"])),
    ("cap-add-justified", "cap_add-all", _set(cap_add=["ALL"])),
    ("no-new-privileges", "security_opt-missing", _drop("security_opt")),
    ("no-new-privileges", "security_opt-false", _set(security_opt=["no-new-privileges:false"])),
    ("no-new-privileges", "security_opt-other", _set(security_opt=["seccomp:default"])),
    ("memory-limit", "memory-missing", lambda s: limits(s).pop("memory")),
    ("cpu-limit", "cpus-missing", lambda s: limits(s).pop("cpus")),
    ("pids-limit", "pids_limit-missing", _drop("pids_limit")),
    ("pids-limit", "pids_limit-zero", _set(pids_limit=0)),
    ("pids-limit", "pids_limit-unlimited", _set(pids_limit=-1)),
    ("healthcheck", "healthcheck-missing", _drop("healthcheck")),
    ("healthcheck", "healthcheck-disable", lambda s: s["healthcheck"].update(disable=True)),
    ("healthcheck", "healthcheck-test-none", lambda s: s["healthcheck"].update(test=["NONE"])),
    ("healthcheck", "healthcheck-test-empty", lambda s: s["healthcheck"].update(test=[])),
    ("restart-policy", "restart-no", _set(restart="no")),
    ("restart-policy", "restart-false", _set(restart=False)),  # YAML `restart: no`
    ("restart-policy", "restart-missing", _drop("restart")),
    ("no-docker-socket", "docker.sock", _mount("/var/run/docker.sock:/var/run/docker.sock")),
    ("no-docker-socket", "docker.sock-ro", _mount("/run/docker.sock:/var/run/docker.sock:ro")),
    (
        "no-docker-socket",
        "docker.sock-long",
        _mount({"type": "bind", "source": "/var/run/docker.sock", "target": "/d.sock"}),
    ),
    ("no-docker-socket", "containerd", _mount("/run/containerd/containerd.sock:/c.sock")),
    ("no-docker-socket", "use_api_socket", _set(use_api_socket=True)),
    ("no-host-mounts", "bind-etc", _mount("/etc:/etc")),
    ("no-host-mounts", "bind-root", _mount("/:/host:ro")),
    ("no-host-mounts", "bind-relative", _mount("./data:/data")),
    ("no-host-mounts", "bind-home", _mount("~/.ssh:/root/.ssh")),
    (
        "no-host-mounts",
        "bind-long",
        _mount({"type": "bind", "source": "/etc", "target": "/etc", "read_only": True}),
    ),
    ("no-host-namespaces", "network_mode-host", _set(network_mode="host")),
    ("no-host-namespaces", "pid-host", _set(pid="host")),
    ("no-host-namespaces", "ipc-host", _set(ipc="host")),
    ("no-host-namespaces", "uts-host", _set(uts="host")),
    ("no-host-namespaces", "userns-host", _set(userns_mode="host")),
    ("no-host-namespaces", "cgroup-host", _set(cgroup="host")),
    ("no-host-namespaces", "network_mode-HOST", _set(network_mode="HOST")),
    # Joining another container's namespace can reach another tenant's container.
    ("no-host-namespaces", "network_mode-container", _set(network_mode="container:other")),
    ("no-host-namespaces", "pid-container", _set(pid="container:other")),
    ("no-host-namespaces", "ipc-container", _set(ipc="container:other")),
    ("no-unconfined", "seccomp-unconfined", _security_opt("seccomp:unconfined")),
    ("no-unconfined", "seccomp=unconfined", _security_opt("seccomp=unconfined")),
    ("no-unconfined", "apparmor-unconfined", _security_opt("apparmor:unconfined")),
    ("no-unconfined", "apparmor=unconfined", _security_opt("apparmor=unconfined")),
    ("no-host-ports", "ports", _set(ports=["18789:18789"])),
    ("no-host-ports", "ports-long", _set(ports=[{"target": 18789, "published": 80}])),
    ("no-devices", "devices", _set(devices=["/dev/kvm:/dev/kvm"])),
    ("non-root-user", "user-root", _set(user="root")),
    ("non-root-user", "user-0", _set(user="0")),
    ("non-root-user", "user-0-int", _set(user=0)),
    ("non-root-user", "user-0:0", _set(user="0:0")),
    ("non-root-user", "user-root:root", _set(user="root:root")),
    ("non-root-user", "user-missing", _drop("user")),
    # uid 0 with another group is still root.
    ("non-root-user", "user-0:1000", _set(user="0:1000")),
    ("non-root-user", "user-root:nogroup", _set(user="root:nogroup")),
    ("read-only-root", "read_only-false", _set(read_only=False)),
    ("read-only-root", "read_only-missing", _drop("read_only")),
    ("pinned-image", "image-latest", _set(image="ghcr.io/openclaw/openclaw:latest")),
    ("pinned-image", "image-no-tag", _set(image="ghcr.io/openclaw/openclaw")),
    ("pinned-image", "image-registry-port-no-tag", _set(image="localhost:5000/openclaw")),
    ("pinned-image", "image-empty-tag", _set(image="ghcr.io/openclaw/openclaw:")),
    ("pinned-image", "image-variable-tag", _set(image="ghcr.io/openclaw/openclaw:${TAG}")),
]


# Top-level volume declarations: the service only names the volume, so these rules are
# checked on the whole compose (audit_compose), not per service.
VOLUME_CASES: list[tuple[str, str, Any]] = [
    ("own-volumes", "external", {"external": True}),
    ("own-volumes", "external-legacy-name", {"external": {"name": "cf-agent-other_x-data"}}),
    ("own-volumes", "renamed", {"name": "cf-agent-other_x-data"}),
    (
        "own-volumes",
        "host-path-bind",
        {"driver": "local", "driver_opts": {"type": "none", "o": "bind", "device": "/"}},
    ),
    ("own-volumes", "host-path-device-only", {"driver_opts": {"device": "/srv/other"}}),
    ("own-volumes", "bind-option-only", {"driver_opts": {"type": "none", "o": "bind,ro"}}),
    ("own-volumes", "nfs-device", {"driver_opts": {"type": "nfs", "device": ":/exports/all"}}),
    ("own-volumes", "other-driver", {"driver": "rexray/ebs"}),
    ("own-volumes", "not-a-mapping", "external"),
]


def test_every_rule_has_a_case():
    assert {rule for rule, _, _ in CASES} | {rule for rule, _, _ in VOLUME_CASES} == set(RULES)


def test_every_rule_has_a_reason():
    assert all(why.strip() for why in RULES.values())


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_good_compose_has_no_findings(name):
    manifest = load_manifest(name)
    compose, names = good_compose(name)
    for key, compose_key in names.items():
        assert audit_service(manifest, key, compose["services"][compose_key]) == []
    assert audit_compose(manifest, compose, names) == []


def test_the_audit_reads_compose_keys_through_the_service_names():
    # Allowances (root, writable root) come from the manifest service the compose key maps to;
    # without the map, a compose key that is not a manifest key is an unknown service.
    manifest = load_manifest("base-llm")
    compose, names = good_compose("base-llm")
    assert audit_compose(manifest, compose, names) == []
    unmapped = audit_compose(manifest, compose)
    assert {f.service for f in unmapped} == set(names.values())
    assert {"non-root-user", "read-only-root"} <= rules_of(unmapped)


def test_a_manifest_key_beside_the_compose_keys_gets_no_allowances():
    manifest = load_manifest("base-llm")
    compose, names = good_compose("base-llm")
    compose["services"]["llm"] = copy.deepcopy(compose["services"][names["llm"]])
    findings = audit_compose(manifest, compose, names)
    assert {(f.service, f.rule) for f in findings} == {
        ("llm", "non-root-user"),
        ("llm", "read-only-root"),
    }


@pytest.mark.parametrize(
    ("rule", "break_it"), [(r, b) for r, _, b in CASES], ids=[i for _, i, _ in CASES]
)
def test_each_rule_catches_a_bad_service(rule, break_it):
    manifest = load_manifest(TEMPLATE)
    service = good_service()
    break_it(service)

    findings = audit_service(manifest, SERVICE, service)

    matching = [f for f in findings if f.rule == rule]
    assert matching, f"no {rule} finding in {[str(f) for f in findings]}"
    for finding in matching:
        assert finding.template == TEMPLATE
        assert finding.service == SERVICE
        assert finding.message
        assert finding.why == RULES[rule]
        assert TEMPLATE in str(finding) and SERVICE in str(finding) and rule in str(finding)
        assert finding.as_dict() == {
            "template": TEMPLATE,
            "service": SERVICE,
            "rule": rule,
            "message": finding.message,
            "why": RULES[rule],
        }
    # Breaking one thing breaks one rule.
    assert rules_of(findings) == {rule}


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/openclaw/openclaw@sha256:" + "a" * 64,
        "ghcr.io/openclaw/openclaw:2026.3.8@sha256:" + "b" * 64,
        "localhost:5000/openclaw:1.2.3",
        "ollama/ollama:0.6.5",
    ],
)
def test_pinned_images_are_accepted(image):
    service = good_service()
    service["image"] = image
    assert audit_service(load_manifest(TEMPLATE), SERVICE, service) == []


@pytest.mark.parametrize(
    "entry",
    [
        "cf-agent-customer-123-customer-123-main-data:/home/node/.openclaw",
        {"type": "volume", "source": "cf-agent-x-data", "target": "/data"},
        {"type": "tmpfs", "target": "/run"},
        "/anonymous",
    ],
)
def test_named_volumes_and_tmpfs_are_not_host_mounts(entry):
    service = good_service()
    service["volumes"] = [entry]
    assert audit_service(load_manifest(TEMPLATE), SERVICE, service) == []


@pytest.mark.parametrize(
    "security_opt", [["no-new-privileges:true"], ["no-new-privileges=true", "seccomp:default"]]
)
def test_no_new_privileges_in_either_spelling(security_opt):
    service = good_service()
    service["security_opt"] = security_opt
    assert audit_service(load_manifest(TEMPLATE), SERVICE, service) == []


def test_alternative_limit_spellings_are_accepted():
    service = good_service()
    service.pop("deploy")
    service.pop("pids_limit")
    service.update(mem_limit="2g", cpus=1.0)
    service["deploy"] = {"resources": {"limits": {"pids": 100}}}
    assert audit_service(load_manifest(TEMPLATE), SERVICE, service) == []


@pytest.mark.parametrize("restart", ["always", "unless-stopped", "on-failure", "on-failure:5"])
def test_restart_policies_that_bring_a_container_back(restart):
    service = good_service()
    service["restart"] = restart
    assert audit_service(load_manifest(TEMPLATE), SERVICE, service) == []


def test_cap_add_justified_by_the_manifest_is_accepted():
    manifest = load_manifest(TEMPLATE)
    spec = dataclasses.replace(
        manifest.services[SERVICE], cap_add={"NET_BIND_SERVICE": "binds port 80"}
    )
    justified = dataclasses.replace(manifest, services={SERVICE: spec})
    service = good_service()
    service["cap_add"] = ["NET_BIND_SERVICE", "CAP_NET_BIND_SERVICE"]

    assert audit_service(justified, SERVICE, service) == []
    service["cap_add"].append("SYS_PTRACE")
    assert rules_of(audit_service(justified, SERVICE, service)) == {"cap-add-justified"}


def test_root_and_writable_root_allowed_only_where_the_manifest_says_why():
    manifest = load_manifest("base-llm")
    llm = good_service("base-llm", "llm")
    assert "user" not in llm and "read_only" not in llm
    assert audit_service(manifest, "llm", llm) == []
    # The same service in a template that gives no reason is flagged.
    assert rules_of(audit_service(load_manifest(TEMPLATE), SERVICE, llm)) >= {
        "non-root-user",
        "read-only-root",
    }


def test_root_allowance_does_not_excuse_other_rules():
    manifest = load_manifest("base-llm")
    webui = good_service("base-llm", "webui")
    webui["privileged"] = True
    findings = audit_service(manifest, "webui", webui)
    assert [(f.template, f.service, f.rule) for f in findings] == [
        ("base-llm", "webui", "no-privileged")
    ]


def test_a_service_the_manifest_does_not_know_gets_no_allowances():
    manifest = load_manifest("base-llm")
    llm = good_service("base-llm", "llm")
    assert rules_of(audit_service(manifest, "intruder", llm)) == {
        "non-root-user",
        "read-only-root",
    }


def test_audit_compose_names_each_bad_service():
    manifest = load_manifest("base-llm")
    compose, names = good_compose("base-llm")
    compose["services"][names["llm"]]["network_mode"] = "host"
    compose["services"][names["webui"]]["ports"] = ["8080:8080"]

    findings = audit_compose(manifest, compose, names)

    assert sorted((f.service, f.rule) for f in findings) == [
        ("llm", "no-host-namespaces"),
        ("webui", "no-host-ports"),
    ]
    assert all(f.template == "base-llm" and f.why for f in findings)


def test_a_service_that_is_not_a_mapping_fails_every_required_rule():
    manifest = load_manifest(TEMPLATE)
    findings = audit_compose(manifest, {"services": {SERVICE: None}})
    assert {"cap-drop-all", "healthcheck", "pinned-image", "memory-limit"} <= rules_of(findings)


def test_a_named_volume_backed_by_a_host_path_is_not_an_own_volume():
    # `driver_opts: {type: none, o: bind, device: /}` turns a named volume into a bind mount of
    # a host path: the service only names the volume, so the audit must read the declaration.
    manifest = load_manifest(TEMPLATE)
    compose, names = good_compose(TEMPLATE)
    (volume,) = compose["volumes"]
    compose["volumes"][volume] = {
        "driver": "local",
        "driver_opts": {"type": "none", "o": "bind", "device": "/"},
    }

    findings = audit_compose(manifest, compose, names)

    assert [(f.service, f.rule) for f in findings] == [(SERVICE, "own-volumes")]
    assert volume in findings[0].message and "'/'" in findings[0].message


@pytest.mark.parametrize(
    ("rule", "declaration"),
    [(r, d) for r, _, d in VOLUME_CASES],
    ids=[i for _, i, _ in VOLUME_CASES],
)
def test_each_volume_rule_catches_a_bad_declaration(rule, declaration):
    manifest = load_manifest(TEMPLATE)
    compose, names = good_compose(TEMPLATE)
    (volume,) = compose["volumes"]
    compose["volumes"][volume] = declaration

    findings = audit_compose(manifest, compose, names)

    # Named against the service that mounts it, with the volume and the reason.
    assert [(f.template, f.service, f.rule) for f in findings] == [(TEMPLATE, SERVICE, rule)]
    assert volume in findings[0].message
    assert findings[0].why == RULES[rule]


@pytest.mark.parametrize(
    "declaration",
    [None, {}, {"driver": "local"}, {"external": False}, {"labels": {"cf.tenant": "x"}}],
    ids=["none", "empty", "local-driver", "external-false", "labels"],
)
def test_a_plain_volume_of_the_stack_is_its_own(declaration):
    manifest = load_manifest(TEMPLATE)
    compose, names = good_compose(TEMPLATE)
    (volume,) = compose["volumes"]
    compose["volumes"][volume] = declaration
    assert audit_compose(manifest, compose, names) == []


def test_a_foreign_volume_is_flagged_for_each_service_that_mounts_it():
    manifest = load_manifest("base-llm")
    compose, names = good_compose("base-llm")
    compose["volumes"]["shared"] = {"external": True}
    compose["volumes"]["unused"] = {"external": True}
    for service in compose["services"].values():
        service["volumes"].append("shared:/shared")

    findings = audit_compose(manifest, compose, names)

    assert sorted((f.service, f.rule, f.message.split()[1]) for f in findings) == [
        ("(none)", "own-volumes", "unused"),  # declared but mounted by nobody: still flagged
        ("llm", "own-volumes", "shared"),
        ("webui", "own-volumes", "shared"),
    ]


@pytest.mark.parametrize(
    "option", ["seccomp:default", "apparmor:docker-default", "label:type:container_t"]
)
def test_confined_security_options_are_accepted(option):
    service = good_service()
    service["security_opt"].append(option)
    assert audit_service(load_manifest(TEMPLATE), SERVICE, service) == []


@pytest.mark.parametrize("user", ["1000", "1000:1000", "node", "1000:0", " 1000 : 1000 "])
def test_a_non_root_uid_is_accepted_whatever_the_group(user):
    # Only the uid part decides: a uid other than 0 is not root even in group 0.
    service = good_service()
    service["user"] = user
    assert audit_service(load_manifest(TEMPLATE), SERVICE, service) == []


# --- the command -----------------------------------------------------------------------------


def run_audit(*args: str) -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("audit_templates", *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return out.getvalue(), error
    return out.getvalue(), None


def test_command_passes_for_the_shipped_templates():
    out, error = run_audit()

    assert error is None
    for name in TEMPLATES:
        version = load_manifest(name).version
        assert f"PASS {name} {version}: all {len(RULES)} rules hold" in out
    assert "FAIL" not in out


def test_command_json_for_the_shipped_templates():
    out, error = run_audit("--json")

    assert error is None
    report = json.loads(out)
    assert set(report) == set(TEMPLATES)
    for name, result in report.items():
        assert result == {
            "ok": True,
            "version": load_manifest(name).version,
            "findings": [],
            "error": None,
        }


def test_command_audits_only_the_named_templates():
    report = json.loads(run_audit("telegram-bot", "--json")[0])
    assert list(report) == ["telegram-bot"]


def fixture_template(
    root: Path, compose_edits: list[tuple[str, str]], manifest_edits: list[tuple[str, str]] = ()
) -> Path:
    folder = root / TEMPLATE
    shutil.copytree(TEMPLATES_DIR / TEMPLATE, folder)
    for filename, edits in ((COMPOSE_FILE, compose_edits), ("manifest.yaml", manifest_edits)):
        path = folder / filename
        text = path.read_text()
        for old, new in edits:
            assert old in text, f"{old!r} not in {filename}"
            text = text.replace(old, new, 1)
        path.write_text(text)
    return root


AFTER_NAME = "    image: {{ services.webui.image }}\n"
MOUNTS = "    volumes:\n"  # the service's list (the top-level key is not indented)
VOLUME_DECLARATION = "  {{ volumes.data }}: {}"  # under the top-level `volumes:`

BAD_FIXTURES: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    "no-privileged": ([(AFTER_NAME, AFTER_NAME + "    privileged: true\n")], []),
    "cap-drop-all": ([("    cap_drop: [ALL]\n", "")], []),
    "cap-add-justified": ([(AFTER_NAME, AFTER_NAME + "    cap_add: [SYS_ADMIN]\n")], []),
    "no-new-privileges": ([('    security_opt: ["no-new-privileges:true"]\n', "")], []),
    "memory-limit": ([("          memory: {{ services.webui.limits.memory }}\n", "")], []),
    "cpu-limit": ([("          cpus: {{ services.webui.limits.cpus }}\n", "")], []),
    "pids-limit": ([("    pids_limit: {{ services.webui.limits.pids }}\n", "")], []),
    "healthcheck": ([("    healthcheck:\n", "    healthcheck:\n      disable: true\n")], []),
    "restart-policy": ([("restart: unless-stopped", 'restart: "no"')], []),
    "no-docker-socket": (
        [(MOUNTS, MOUNTS + "      - /var/run/docker.sock:/var/run/docker.sock\n")],
        [],
    ),
    "no-host-mounts": ([(MOUNTS, MOUNTS + "      - /etc:/host-etc:ro\n")], []),
    "no-host-namespaces": ([(AFTER_NAME, AFTER_NAME + "    network_mode: host\n")], []),
    "no-unconfined": (
        [
            (
                '    security_opt: ["no-new-privileges:true"]\n',
                '    security_opt: ["no-new-privileges:true", "seccomp:unconfined"]\n',
            )
        ],
        [],
    ),
    "own-volumes": ([(VOLUME_DECLARATION, "  {{ volumes.data }}: {external: true}")], []),
    "no-host-ports": ([(AFTER_NAME, AFTER_NAME + '    ports: ["18789:18789"]\n')], []),
    "no-devices": ([(AFTER_NAME, AFTER_NAME + '    devices: ["/dev/kvm:/dev/kvm"]\n')], []),
    "non-root-user": ([("user: {{ services.webui.user }}", "user: root")], []),
    "read-only-root": ([("read_only: true", "read_only: false")], []),
    "pinned-image": (
        [],
        [("ghcr.io/openclaw/openclaw:2026.3.8", "ghcr.io/openclaw/openclaw:latest")],
    ),
}


# More ways to break a rule, beyond the one fixture each rule has.
MORE_BAD_FIXTURES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "network_mode-container": (
        "no-host-namespaces",
        [(AFTER_NAME, AFTER_NAME + '    network_mode: "container:other"\n')],
    ),
    "apparmor-unconfined": (
        "no-unconfined",
        [
            (
                '    security_opt: ["no-new-privileges:true"]\n',
                '    security_opt: ["no-new-privileges:true", "apparmor=unconfined"]\n',
            )
        ],
    ),
    "volume-renamed": (
        "own-volumes",
        [(VOLUME_DECLARATION, '  {{ volumes.data }}: {name: "cf-agent-other_main-data"}')],
    ),
    "volume-host-path": (
        "own-volumes",
        [
            (
                VOLUME_DECLARATION,
                "  {{ volumes.data }}:\n    driver_opts: {type: none, o: bind, device: /}",
            )
        ],
    ),
    "user-uid-0-other-group": (
        "non-root-user",
        [("user: {{ services.webui.user }}", 'user: "0:1000"')],
    ),
}
FIXTURE_IDS = sorted(BAD_FIXTURES) + sorted(MORE_BAD_FIXTURES)


def fixture_edits(fixture_id: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    if fixture_id in BAD_FIXTURES:
        return fixture_id, *BAD_FIXTURES[fixture_id]
    rule, compose_edits = MORE_BAD_FIXTURES[fixture_id]
    return rule, compose_edits, []


def test_every_rule_has_a_bad_fixture():
    assert set(BAD_FIXTURES) == set(RULES)
    assert {rule for rule, _ in MORE_BAD_FIXTURES.values()} <= set(RULES)


@pytest.mark.parametrize("fixture_id", FIXTURE_IDS)
def test_command_fails_on_a_bad_fixture_naming_the_rule(fixture_id, tmp_path):
    rule, compose_edits, manifest_edits = fixture_edits(fixture_id)
    folder = fixture_template(tmp_path, compose_edits, manifest_edits)

    out, error = run_audit("--templates-dir", str(folder))

    assert error is not None, out
    assert TEMPLATE in str(error)
    assert f"FAIL {TEMPLATE}" in out
    assert f"{SERVICE}: [{rule}]" in out
    assert RULES[rule] in out

    report = json.loads(run_audit("--templates-dir", str(folder), "--json")[0])
    result = report[TEMPLATE]
    assert result["ok"] is False
    assert result["error"] is None
    assert {f["rule"] for f in result["findings"]} == {rule}
    for finding in result["findings"]:
        assert finding["template"] == TEMPLATE
        assert finding["service"] == SERVICE
        assert finding["why"] == RULES[rule]


def test_command_json_exits_non_zero_too(tmp_path):
    folder = fixture_template(tmp_path, [(AFTER_NAME, AFTER_NAME + "    privileged: true\n")])
    with pytest.raises(CommandError, match="openclaw-agent"):
        call_command("audit_templates", "--templates-dir", str(folder), "--json", stdout=StringIO())


def test_command_reports_a_template_that_does_not_render(tmp_path):
    folder = fixture_template(tmp_path, [("init: true", "init: {{ nowhere }}")])

    out, error = run_audit("--templates-dir", str(folder), "--json")

    assert error is not None
    result = json.loads(out)[TEMPLATE]
    assert result["ok"] is False
    assert "openclaw-agent" in result["error"]


def test_command_reports_a_template_that_strays_from_its_manifest(tmp_path):
    folder = fixture_template(
        tmp_path, [("services:\n  {{ service_names.webui }}:", "services:\n  other:")]
    )

    out, error = run_audit("--templates-dir", str(folder))

    assert error is not None
    assert "FAIL openclaw-agent" in out
    assert "error:" in out


def test_command_reports_a_broken_manifest(tmp_path):
    folder = fixture_template(tmp_path, [], [("limits: {memory: 2g, cpus: 1.0, pids: 512}", "")])

    out, error = run_audit("--templates-dir", str(folder))

    assert error is not None
    assert "FAIL openclaw-agent" in out


def test_command_fails_on_an_empty_folder(tmp_path):
    with pytest.raises(CommandError, match="no templates"):
        call_command("audit_templates", "--templates-dir", str(tmp_path), stdout=StringIO())


def test_command_with_good_and_bad_templates_names_only_the_bad_one(tmp_path):
    fixture_template(tmp_path, [(AFTER_NAME, AFTER_NAME + "    pid: host\n")])
    shutil.copytree(TEMPLATES_DIR / "telegram-bot", tmp_path / "telegram-bot")

    out, error = run_audit("--templates-dir", str(tmp_path))

    assert error is not None
    assert "openclaw-agent" in str(error) and "telegram-bot" not in str(error)
    assert f"PASS telegram-bot {load_manifest('telegram-bot').version}" in out
    assert "[no-host-namespaces] pid: host" in out
