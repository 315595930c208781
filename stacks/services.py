"""Workflows over several stack rows (each writes its audit trail)."""

from __future__ import annotations

from cfadmin import encryption
from stacks.models import StackSecret


def rotate_encryption_keys() -> tuple[int, int]:
    """Re-encrypt every secret not yet under the current key. Returns (rotated, total)."""
    rotated = total = 0
    for secret in StackSecret.objects.only("pk", "value_encrypted").iterator():
        total += 1
        if encryption.needs_rotation(secret.value_encrypted):
            StackSecret.objects.filter(pk=secret.pk).update(
                value_encrypted=encryption.rotate(secret.value_encrypted)
            )
            rotated += 1
    return rotated, total
