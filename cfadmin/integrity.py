"""Uniqueness races: which unique rule an IntegrityError broke, on SQLite and PostgreSQL.

Every unique rule is checked in Python first, so that a refusal names the field and the rule;
the database's constraint is the last line of defence, for two requests that both passed the
check at once. The loser's insert then fails with an IntegrityError: callers make the insert in
a savepoint (`transaction.atomic()` nested), catch it, and answer with the same field error the
check gives a moment later — never a 500 page or a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.db import IntegrityError, connections, models
from django.http import HttpRequest, HttpResponse

UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE unique_violation
SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<columns>.+)$")


@dataclass(frozen=True)
class UniqueRule:
    """A model's UniqueConstraint (by its name) or unique field (by the field's name)."""

    name: str
    fields: tuple[str, ...]
    message: str
    code: str


def is_unique_violation(error: IntegrityError) -> bool:
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) == UNIQUE_VIOLATION:
        return True
    return SQLITE_UNIQUE.search(str(error)) is not None


def unique_rules(model: type[models.Model]) -> list[UniqueRule]:
    meta = model._meta
    rules = [
        UniqueRule(
            constraint.name,
            tuple(constraint.fields),
            str(constraint.violation_error_message or ""),
            constraint.violation_error_code or "unique",
        )
        for constraint in meta.constraints
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields
    ]
    rules += [
        UniqueRule(field.name, (field.name,), str(field.error_messages["unique"]), "unique")
        for field in meta.concrete_fields
        if field.unique and not field.primary_key
    ]
    return rules


def broken_unique_rule(
    error: IntegrityError, model: type[models.Model], using: str = "default"
) -> UniqueRule | None:
    """The unique rule of `model` that `error` broke; None for any other integrity error.

    PostgreSQL names the constraint (a unique field's is named by the database, so its columns
    are looked up); SQLite names the columns (`UNIQUE constraint failed: t.a, t.b`). Call it
    after the failed savepoint was rolled back: it may query the schema.
    """
    if not is_unique_violation(error):
        return None
    rules = unique_rules(model)
    columns = _broken_columns(error, model, using)
    if isinstance(columns, str):  # a constraint name
        named = next((rule for rule in rules if rule.name == columns), None)
        if named is not None:
            return named
        columns = _constraint_columns(columns, model, using)
    for rule in rules:
        if {model._meta.get_field(name).column for name in rule.fields} == columns:
            return rule
    return None


def _broken_columns(error: IntegrityError, model: type[models.Model], using: str) -> str | set[str]:
    diag = getattr(error.__cause__, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        if getattr(diag, "table_name", model._meta.db_table) != model._meta.db_table:
            return set()
        return str(diag.constraint_name)
    match = SQLITE_UNIQUE.search(str(error))
    if match is None:
        return set()
    table = model._meta.db_table
    qualified = [part.strip() for part in match["columns"].split(",")]
    return {part.split(".", 1)[1] for part in qualified if part.startswith(f"{table}.")}


def _constraint_columns(name: str, model: type[models.Model], using: str) -> set[str]:
    connection = connections[using]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return set(constraints.get(name, {}).get("columns") or [])


class UniqueRaceAdminMixin(admin.ModelAdmin):
    """An add or change form that lost a uniqueness race answers like the form's own check.

    The form validated (nobody had the slug yet) and the save then hit the database's
    constraint: another request saved the same value in between. The admin's transaction has
    rolled back by then, so the view runs again; its form now sees the other row and shows the
    field error it shows to anyone a moment later.
    """

    race_retries = 2

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        attempt = 0
        while True:
            attempt += 1
            try:
                return super().changeform_view(request, object_id, form_url, extra_context)
            except IntegrityError as error:
                # Any unique rule: an inline's rows (a stack's domains) race as well.
                if not is_unique_violation(error) or attempt > self.race_retries:
                    raise
