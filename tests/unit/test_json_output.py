"""cfadmin.management.json_output: the one error shape every JSON command prints."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core.management import CommandError

from cfadmin.management.json_output import (
    CommandFailure,
    FieldProblem,
    JsonCommand,
    argparse_failure,
    quiet_logging,
)


def test_a_failure_lists_every_field_and_keeps_the_first_as_field():
    failure = CommandFailure(
        "validation_failed",
        "two problems",
        fields=[
            FieldProblem("template", "Unknown template.", "unknown_template"),
            FieldProblem("domain.webui", "Taken.", "domain_taken"),
        ],
    )

    assert failure.as_json() == {
        "ok": False,
        "error": {
            "code": "validation_failed",
            "message": "two problems",
            "field": "template",
            "fields": [
                {"field": "template", "code": "unknown_template", "message": "Unknown template."},
                {"field": "domain.webui", "code": "domain_taken", "message": "Taken."},
            ],
        },
    }
    assert isinstance(failure, CommandError) and failure.returncode == 1


def test_a_failure_without_fields_has_neither_field_nor_fields():
    assert CommandFailure("timeout", "Still running.").as_json() == {
        "ok": False,
        "error": {"code": "timeout", "message": "Still running."},
    }


def test_field_errors_become_one_failure_and_a_lone_one_keeps_its_code():
    one = CommandFailure.from_field_errors(
        [{"field": "tenant", "message": "Unknown tenant.", "code": "unknown_tenant"}]
    )
    assert (one.code, one.message, one.field) == ("unknown_tenant", "Unknown tenant.", "tenant")

    two = CommandFailure.from_field_errors(
        [
            {"field": "tenant", "message": "Unknown tenant.", "code": "unknown_tenant"},
            {"field": "stack_name", "message": "Too long.", "code": "max_length"},
        ]
    )
    assert two.code == "validation_failed"
    assert two.message == "tenant: Unknown tenant; stack_name: Too long."
    assert [f["field"] for f in two.as_json()["error"]["fields"]] == ["tenant", "stack_name"]


def test_argparse_complaints_hide_values_and_name_every_missing_flag():
    stray = argparse_failure("unrecognized arguments: --bogus sk-secret-value", "manage.py x")
    assert stray.code == "bad_flag"
    assert "sk-secret-value" not in json.dumps(stray.as_json())
    assert "--bogus" in stray.message and "1 value(s) not shown" in stray.message

    missing = argparse_failure("the following arguments are required: --tenant, --stack-name")
    assert [(f.field, f.code) for f in missing.fields] == [
        ("tenant", "required"),
        ("stack-name", "required"),
    ]


def test_quiet_logging_holds_back_info_but_not_warnings(caplog):
    logger = logging.getLogger("django-q")
    with caplog.at_level(logging.INFO), quiet_logging():
        logger.info("Enqueued [cfadmin] 1")
        logger.warning("a real problem")
    assert [r.getMessage() for r in caplog.records] == ["a real problem"]
    with caplog.at_level(logging.INFO):
        logger.info("after")  # switched back on
    assert caplog.records[-1].getMessage() == "after"


class TwoFields(JsonCommand):
    def handle(self, *args, **options):
        logging.getLogger("django-q").info("Enqueued [cfadmin] 7")
        raise CommandFailure(
            "validation_failed",
            "a: bad; b: bad.",
            fields=[FieldProblem("a", "bad"), FieldProblem("b", "bad")],
        )


def run(command_class: type[JsonCommand], *argv: str) -> tuple[str, str, int]:
    """As `manage.py` runs it: run_from_argv, which exits."""
    out, err = io.StringIO(), io.StringIO()
    command = command_class(stdout=out, stderr=err)
    with pytest.raises(SystemExit) as exited:
        command.run_from_argv(["manage.py", "twofields", *argv])
    return out.getvalue(), err.getvalue(), exited.value.code


def test_from_the_shell_one_json_object_and_a_quiet_stderr(caplog):
    with caplog.at_level(logging.INFO):
        out, err, code = run(TwoFields)

    assert code == 1
    error = json.loads(out)["error"]
    assert [f["field"] for f in error["fields"]] == ["a", "b"]
    assert err == ""  # not Django's "CommandError: …" line too
    assert "Enqueued" not in caplog.text


def test_verbose_adds_one_human_line_on_stderr(caplog):
    with caplog.at_level(logging.INFO):
        out, err, code = run(TwoFields, "--verbose")

    assert code == 1
    assert json.loads(out)["ok"] is False
    assert err == "error [validation_failed]: a: bad; b: bad.\n"
    assert "Enqueued" in caplog.text  # --verbose keeps the log lines (on stderr)


def test_a_bad_flag_from_the_shell_is_the_json_error_too():
    out, err, code = run(TwoFields, "--no-such-flag")

    assert code == 1
    assert json.loads(out)["error"]["code"] == "bad_flag"
    assert err == ""
