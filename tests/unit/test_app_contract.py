"""The contract every app follows: dependencies point one way (cfadmin ← tenants ← stacks ← ops,
migrations included), and each app declares its own schedules and role permissions on its
AppConfig, installed in one step after every migrate."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django_q.models import Schedule

from cfadmin.roles import ADMIN, OPERATOR, ROLES, SUPPORT, VIEWER, role_permissions
from cfadmin.schedules import declared_schedules, install_schedules

BASE_DIR = Path(__file__).resolve().parents[2]
LAYERS = ["cfadmin", "tenants", "stacks", "ops"]  # each may import only those before it


def imported_apps(path: Path) -> set[str]:
    """The project apps a Python file imports, and those its migration depends on."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "dependencies" for t in node.targets
        ):
            for element in getattr(node.value, "elts", []):
                if isinstance(element, ast.Tuple) and element.elts:
                    found.add(getattr(element.elts[0], "value", ""))
    return found & set(LAYERS)


@pytest.mark.parametrize("app", LAYERS[:-1])
def test_no_lower_app_imports_a_higher_one_migrations_included(app):
    higher = set(LAYERS[LAYERS.index(app) + 1 :])
    offending = {
        str(path.relative_to(BASE_DIR)): sorted(imported_apps(path) & higher)
        for path in (BASE_DIR / app).rglob("*.py")
        if "coolify_simulator" not in path.parts
    }
    assert {path: apps for path, apps in offending.items() if apps} == {}


def test_the_contract_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "0009_bad.py"
    module.write_text(
        "from ops.procedures import RUNBOOK_PROCEDURES\n"
        "class Migration:\n    dependencies = [('ops', '0004_incidents')]\n"
    )
    assert imported_apps(module) == {"ops"}


def test_each_app_declares_only_its_own_permissions():
    owners = {"cfadmin": {"cfadmin", "auth"}}  # cfadmin's user admin manages staff users
    for config in django_apps.get_app_configs():
        declared = getattr(config, "role_permissions", {})
        labels = {name.split(".")[0] for names in declared.values() for name in names}
        assert labels <= owners.get(config.label, {config.label}), config.label
        assert set(declared) <= set(ROLES), config.label


def test_each_role_includes_the_one_before_it():
    roles = role_permissions()
    for lower, higher in itertools.pairwise(ROLES):
        assert set(roles[lower]) < set(roles[higher]), (lower, higher)
    assert "stacks.view_stack" in roles[VIEWER]
    assert "stacks.dry_run_stack" in roles[SUPPORT]
    assert "stacks.deploy_stack" in roles[OPERATOR] and "stacks.deploy_stack" not in roles[SUPPORT]
    assert "stacks.delete_stack" in roles[ADMIN] and "stacks.delete_stack" not in roles[OPERATOR]


def test_every_app_declares_its_own_schedules():
    owners = {spec.func.split(".")[0] for spec in declared_schedules()}
    assert owners == {"cfadmin", "stacks", "ops"}
    for config in django_apps.get_app_configs():
        for spec in getattr(config, "schedules", ()):
            assert spec.func.startswith(f"{config.label}."), spec


@pytest.mark.django_db(transaction=True)
def test_one_migrate_installs_every_apps_schedules_and_roles():
    Schedule.objects.all().delete()
    Group.objects.all().delete()

    call_command("migrate", verbosity=0)  # nothing to migrate: the one step still runs

    assert set(Schedule.objects.values_list("name", flat=True)) == {
        spec.name for spec in declared_schedules()
    }
    for role, names in role_permissions().items():
        held = Permission.objects.filter(group__name=role)
        assert {f"{p.content_type.app_label}.{p.codename}" for p in held} == set(names)


@pytest.mark.django_db
def test_installing_schedules_twice_keeps_one_of_each_and_follows_settings(settings):
    settings.HEALTHCHECK_INTERVAL_MINUTES = 7
    install_schedules()
    install_schedules()
    assert Schedule.objects.filter(name="cfadmin.health_checks").get().minutes == 7
    assert Schedule.objects.count() == len(declared_schedules())


def project_modules() -> list[Path]:
    """The project's own Python modules, migrations and the simulator left out."""
    return [
        path
        for app in LAYERS
        for path in (BASE_DIR / app).rglob("*.py")
        if "coolify_simulator" not in path.parts and "migrations" not in path.parts
    ]


def test_no_module_grows_past_450_lines():
    sizes = {
        str(p.relative_to(BASE_DIR)): len(p.read_text().splitlines()) for p in project_modules()
    }
    assert {path: n for path, n in sizes.items() if n >= 450} == {}


def literal_permission_checks(path: Path) -> list[int]:
    """Lines calling `has_perm("…")` with a string literal (a permission helper's constant is
    the rule: `may(user, permissions.X)`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", "") == "has_perm"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]


def test_permissions_are_asked_through_the_helpers_not_literals(tmp_path):
    found = {str(p.relative_to(BASE_DIR)): literal_permission_checks(p) for p in project_modules()}
    assert {path: lines for path, lines in found.items() if lines} == {}
    probe = tmp_path / "probe.py"
    probe.write_text('if request.user.has_perm("ops.view_incident"):\n    pass\n')
    assert literal_permission_checks(probe) == [1]


def test_jobs_are_queued_only_through_enqueue():
    callers = {
        str(p.relative_to(BASE_DIR)) for p in project_modules() if "async_task(" in p.read_text()
    }
    assert callers == {"cfadmin/jobs.py"}


def test_each_custom_page_permission_is_declared_by_its_own_app():
    for config in django_apps.get_app_configs():
        for url_name, permissions in getattr(config, "url_permissions", {}).items():
            assert url_name.startswith(f"{config.label}_"), url_name
            assert {p.split(".")[0] for p in permissions} == {config.label}, url_name
