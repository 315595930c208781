"""Re-encrypt every stored secret under the first key of SECRETS_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from cfadmin import audit
from cfadmin.models import AuditAction


class Command(BaseCommand):
    help = (
        "After putting a new key first in SECRETS_ENCRYPTION_KEYS, re-encrypt all secrets with "
        "it; then the old key can be removed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        from stacks.services import rotate_encryption_keys

        with transaction.atomic():
            rotated, total = rotate_encryption_keys()
            audit.record(
                actor="cli",
                action=AuditAction.SECRETS_ROTATED,
                message=f"Re-encrypted {rotated} of {total} stored secrets under the current key.",
            )
        self.stdout.write(f"Re-encrypted {rotated} of {total} stored secrets.")
