"""Management commands that print JSON: one document on stdout, whatever happens.

Scripts read stdout, so it carries exactly one JSON document: the result, or on failure
`{"ok": false, "error": {"code", "message", "field"?, "fields"?}}`, where `fields` lists every
field problem (`{"field", "code", "message"}`) and `field` repeats the first one (the shape
scripts relied on before `fields` existed). The exit status is non-zero on failure. stderr
stays quiet: a human line about the failure only with `--verbose` (or `-v 2`), and log
records below WARNING are held back while the command runs, so a django-q "Enqueued …" line
never lands next to the JSON (not even in `2>&1`).

Commands subclass `JsonCommand`; `json_always = False` makes JSON a `--json` choice (text
mode keeps Django's usual "CommandError: …" on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

VERBOSE_FLAG = "--verbose"
REQUIRED_PREFIX = "the following arguments are required:"
UNRECOGNIZED_PREFIX = "unrecognized arguments:"


@dataclass(frozen=True)
class FieldProblem:
    """One field and the rule it broke (`code`), in words (`message`)."""

    field: str
    message: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class CommandFailure(CommandError):
    """A failure with a machine-readable shape. A CommandError, so `call_command` callers and
    Django's own handling see what they always saw; `reported` once its JSON is printed."""

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        *,
        fields: Iterable[FieldProblem] = (),
        returncode: int = 1,
        reported: bool = False,
    ) -> None:
        super().__init__(message, returncode=returncode)
        self.code = code
        self.message = message
        self.fields = list(fields)
        if field and not any(problem.field == field for problem in self.fields):
            self.fields.insert(0, FieldProblem(field, message, code))
        self.reported = reported

    @property
    def field(self) -> str | None:
        return self.fields[0].field if self.fields else None

    @classmethod
    def from_field_errors(
        cls, errors: Iterable[Mapping[str, str]], *, code: str = "validation_failed"
    ) -> CommandFailure:
        """One failure for every `{"field", "message", "code"}`; a lone error keeps its code."""
        problems = [
            FieldProblem(e["field"], e["message"], e.get("code", "invalid")) for e in errors
        ]
        if len(problems) == 1:
            only = problems[0]
            return cls(only.code, only.message, fields=problems)
        message = "; ".join(f"{p.field}: {p.message.rstrip('.')}" for p in problems) + "."
        return cls(code, message, fields=problems)

    def as_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["field"] = self.fields[0].field
            error["fields"] = [problem.as_dict() for problem in self.fields]
        return {"ok": False, "error": error}

    def human_line(self) -> str:
        return human_line(self.code, self.message)


def human_line(code: str, message: str) -> str:
    """The stderr line `--verbose` adds: what a person reads, beside the JSON scripts read."""
    return f"error [{code}]: {message}"


def argparse_failure(message: str, prog: str = "") -> CommandFailure:
    """argparse's complaint as a `bad_flag` failure. It quotes what it did not understand,
    which may be a secret (`--env KEY value`), so only option names are kept."""
    hint = f"; see `{prog} --help`" if prog else ""
    if message.startswith(UNRECOGNIZED_PREFIX):
        words = message[len(UNRECOGNIZED_PREFIX) :].split()
        options = [word for word in words if word.startswith("-")]
        hidden = len(words) - len(options)
        message = f"{UNRECOGNIZED_PREFIX} {' '.join(options)}".rstrip() + (
            f" and {hidden} value(s) not shown (they may hold secrets)" if hidden else ""
        )
        return CommandFailure("bad_flag", message + hint)
    if message.startswith(REQUIRED_PREFIX):
        names = [n.strip() for n in message[len(REQUIRED_PREFIX) :].split(",") if n.strip()]
        problems = [
            FieldProblem(name.split("/")[-1].lstrip("-"), f"{name} is required", "required")
            for name in names
        ]
        return CommandFailure("bad_flag", message + hint, fields=problems)
    return CommandFailure("bad_flag", message + hint)


class JsonArgumentParser(CommandParser):
    """Bad flags become the JSON error shape, not argparse's usage text (subcommands too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise argparse_failure(message, self.prog)


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """`--verbose` on a (sub)parser; a subparser's default must not undo the main one's."""
    parser.add_argument(
        VERBOSE_FLAG,
        action="store_true",
        default=argparse.SUPPRESS,
        help="also say on stderr why the command failed (stdout keeps the JSON alone)",
    )


@contextmanager
def quiet_logging(level: int = logging.INFO) -> Iterator[None]:
    """Hold back log records at `level` and below (django-q's "Enqueued …" is INFO)."""
    previous = logging.root.manager.disable
    logging.disable(max(level, previous))
    try:
        yield
    finally:
        logging.disable(previous)


class JsonCommand(BaseCommand):
    """A command whose stdout is one JSON document (see the module docstring)."""

    json_always = True  # False: JSON only with --json, which the command declares itself

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        add_verbose_flag(parser)
        if self.json_always:
            parser.error = JsonArgumentParser.error.__get__(parser)  # type: ignore[method-assign]
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        try:
            super().run_from_argv(argv)
        except CommandFailure as failure:  # raised while parsing flags, before execute()
            if not failure.reported:
                self.write_json(failure.as_json())
            if VERBOSE_FLAG in argv:
                self.stderr.write(failure.human_line())
            sys.exit(failure.returncode)

    def json_mode(self, options: Mapping[str, Any]) -> bool:
        return self.json_always or bool(options.get("json"))

    def execute(self, *args: Any, **options: Any) -> Any:
        self.verbose = bool(options.get("verbose")) or options.get("verbosity", 1) >= 2
        if not self.json_mode(options):
            try:
                return super().execute(*args, **options)
            except CommandFailure as failure:  # text mode: Django's own "CommandError: …" line
                raise CommandError(failure.message, returncode=failure.returncode) from None
        try:
            if self.verbose:
                return super().execute(*args, **options)
            with quiet_logging():
                return super().execute(*args, **options)
        except CommandError as error:
            failure = (
                error
                if isinstance(error, CommandFailure)
                else CommandFailure("command_error", str(error), returncode=error.returncode)
            )
            if not failure.reported:
                self.write_json(failure.as_json())
                failure.reported = True
            self.explain(failure.code, failure.message)
            if self._called_from_command_line:
                sys.exit(failure.returncode)  # said once already: not Django's stderr line too
            raise failure from None

    def write_json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, indent=2))

    def explain(self, code: str, message: str) -> None:
        """With --verbose, a human line on stderr about a failure the JSON reports."""
        if getattr(self, "verbose", False):
            self.stderr.write(human_line(code, message))

    def fail_reported(self, code: str, message: str, *, returncode: int = 1) -> CommandFailure:
        """A failure whose details are already in the JSON printed (no second document)."""
        return CommandFailure(code, message, returncode=returncode, reported=True)
