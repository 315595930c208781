"""Configuration: production settings pass `check --deploy`; bad config fails loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parents[2]


def run_manage(tmp_path: Path, *args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    """manage.py in a clean environment: only what a production deployment would set."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "cfadmin.settings",
        "CFADMIN_ENV_FILE": str(tmp_path / "absent.env"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **env_overrides,
    }
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def production_env() -> dict[str, str]:
    """The production environment the README documents."""
    return {
        "DEBUG": "false",
        "SECRET_KEY": Fernet.generate_key().decode() + "-production-secret-key-example",
        "ALLOWED_HOSTS": "cfadmin.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://cfadmin.example.com",
        "SECRETS_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }


def test_check_deploy_passes_with_the_documented_production_environment(tmp_path):
    result = run_manage(
        tmp_path, "check", "--deploy", "--fail-level", "WARNING", **production_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_debug_settings(tmp_path):
    env = production_env() | {"DEBUG": "true"}
    result = run_manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    assert "security.W018" in result.stderr + result.stdout


def test_missing_secret_key_outside_debug_is_a_clear_startup_error(tmp_path):
    env = production_env()
    del env["SECRET_KEY"]
    result = run_manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_missing_encryption_keys_outside_debug_is_a_clear_startup_error(tmp_path):
    env = production_env()
    del env["SECRETS_ENCRYPTION_KEYS"]
    result = run_manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert "SECRETS_ENCRYPTION_KEYS is not set" in result.stderr


def test_a_malformed_encryption_key_fails_the_system_check(tmp_path):
    env = production_env() | {"SECRETS_ENCRYPTION_KEYS": "not-a-fernet-key"}
    result = run_manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert "cfadmin.E001" in result.stderr
    assert "key #1 is not a Fernet key" in result.stderr


def test_debug_without_keys_warns_about_the_development_fallback(tmp_path):
    result = run_manage(tmp_path, "check", DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert "cfadmin.W001" in result.stderr + result.stdout


def test_collectstatic_works_as_the_dockerfile_runs_it(tmp_path):
    # Same throwaway values as the Dockerfile's build step; hashed, compressed output.
    result = run_manage(
        tmp_path,
        "collectstatic",
        "--noinput",
        SECRET_KEY="collectstatic-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
        SECRETS_ENCRYPTION_KEYS="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        STATIC_ROOT=str(tmp_path / "static"),
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    assert list((tmp_path / "static" / "admin" / "css").glob("base.*.css.gz"))


def test_bad_business_hours_are_a_clear_startup_error_naming_the_variable(tmp_path):
    for variable, value, rule in (
        ("BUSINESS_HOURS", "9 to 5", "HH:MM-HH:MM"),
        ("BUSINESS_HOURS", "17:00-09:00", "closing time must be after opening time"),
        ("BUSINESS_DAYS", "monday,funday", "at least one day out of mon,tue"),
        ("BUSINESS_TIME_ZONE", "Mars/Olympus", "not a known time zone"),
    ):
        result = run_manage(tmp_path, "check", **production_env(), **{variable: value})
        assert result.returncode != 0, variable
        assert f"{variable}=" in result.stderr and rule in result.stderr, result.stderr[-500:]


def test_env_example_lists_every_variable_the_settings_read():
    import re

    settings_text = "".join(p.read_text() for p in (BASE_DIR / "cfadmin").glob("settings*.py"))
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', settings_text))
    example = (BASE_DIR / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert "BUSINESS_DAYS" in read and "SECRET_KEY" in read
    assert read - listed == set()
