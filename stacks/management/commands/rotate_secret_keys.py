"""Re-encrypt every stored secret under the first key of SECRETS_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken
from django.core.management.base import CommandParser
from django.db import transaction

from cfadmin import audit
from cfadmin.management.json_output import CommandFailure, JsonCommand
from cfadmin.models import AuditAction


class Command(JsonCommand):
    json_always = False  # text unless --json
    help = (
        "After putting a new key first in SECRETS_ENCRYPTION_KEYS, re-encrypt all secrets with "
        "it; then the old key can be removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        from stacks.services import rotate_encryption_keys

        try:
            with transaction.atomic():
                rotated, total = rotate_encryption_keys()
                audit.record(
                    actor="cli",
                    action=AuditAction.SECRETS_ROTATED,
                    message=f"Re-encrypted {rotated} of {total} stored secrets under the current "
                    "key.",
                )
        except InvalidToken:
            # Nothing is half-done: the transaction rolled back every secret rotated so far.
            raise CommandFailure(
                "unknown_key",
                "A stored secret opens with none of SECRETS_ENCRYPTION_KEYS; put its old key "
                "back in the list (after the new one) and run this again. Nothing was changed.",
                "SECRETS_ENCRYPTION_KEYS",
            ) from None
        if options["json"]:
            self.write_json({"ok": True, "rotated": rotated, "total": total})
            return
        self.stdout.write(f"Re-encrypted {rotated} of {total} stored secrets.")
