"""The other JSON commands keep the shell contract (cfadmin.management.json_output): one JSON
document on stdout, every field problem in it, stderr quiet unless --verbose."""

from __future__ import annotations

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from stacks.models import StackSecret


def run(*args: str) -> tuple[dict, str, CommandError | None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as error:
        return json.loads(out.getvalue()), err.getvalue(), error
    return json.loads(out.getvalue()), err.getvalue(), None


def test_audit_templates_json_with_nothing_to_audit_is_one_error_object(tmp_path):
    output, err, error = run("audit_templates", "--templates-dir", str(tmp_path), "--json")

    assert error is not None and "no templates" in str(error)
    assert output == {
        "ok": False,
        "error": {
            "code": "no_templates",
            "message": f"no templates found in {tmp_path}",
            "field": "templates_dir",
            "fields": [
                {
                    "field": "templates_dir",
                    "code": "no_templates",
                    "message": f"no templates found in {tmp_path}",
                }
            ],
        },
    }
    assert err == ""


def test_audit_templates_in_text_mode_keeps_the_plain_command_error(tmp_path):
    with pytest.raises(CommandError) as raised:
        call_command("audit_templates", "--templates-dir", str(tmp_path), stdout=io.StringIO())
    assert type(raised.value) is CommandError  # Django prints "CommandError: …" as before


@pytest.mark.django_db
def test_rotate_secret_keys_json(settings, make_stack):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SECRETS_ENCRYPTION_KEYS = [old]
    make_stack("customer-123", "main", secrets={"A_KEY": "a" * 20})
    settings.SECRETS_ENCRYPTION_KEYS = [new, old]

    output, err, error = run("rotate_secret_keys", "--json")

    assert error is None and err == ""
    assert output == {"ok": True, "rotated": 1, "total": 1}


@pytest.mark.django_db
def test_rotate_secret_keys_with_the_old_key_missing_is_a_json_error_and_changes_nothing(
    settings, make_stack
):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SECRETS_ENCRYPTION_KEYS = [old]
    make_stack("customer-123", "main", secrets={"A_KEY": "a" * 20})
    before = list(StackSecret.objects.values_list("value_encrypted", flat=True))
    settings.SECRETS_ENCRYPTION_KEYS = [new]  # the old key was dropped too soon

    output, err, error = run("rotate_secret_keys", "--json")

    assert error is not None and error.returncode == 1
    assert output["ok"] is False
    assert output["error"]["code"] == "unknown_key"
    assert output["error"]["field"] == "SECRETS_ENCRYPTION_KEYS"
    assert err == ""
    assert list(StackSecret.objects.values_list("value_encrypted", flat=True)) == before
