"""A stack's secret values: stored encrypted, rotated with a restart, re-encrypted under a
new key."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from cfadmin import encryption
from stacks.choices import OperationKind
from stacks.models import Operation, Stack, StackSecret
from stacks.services.operations import OperationRefused, request_operation


def store_secrets(stack: Stack, values: dict[str, str]) -> None:
    """Save each value encrypted (new keys are added, known ones replaced)."""
    for key, value in values.items():
        secret = StackSecret.objects.filter(stack=stack, key=key).first() or StackSecret(
            stack=stack, key=key
        )
        secret.set_value(value)
        secret.full_clean()
        secret.save()


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


def rotate_stack_secrets(stack: Stack, values: dict[str, str], *, actor: Any) -> Operation:
    """Store new values (encrypted) and queue their push to Coolify and a restart, as one."""
    if not values:
        raise OperationRefused("nothing_to_rotate", "Enter a new value for at least one key.")
    with transaction.atomic():
        operation = request_operation(
            stack, OperationKind.ROTATE_SECRETS, actor=actor, parameters={"keys": sorted(values)}
        )
        store_secrets(stack, values)
    return operation
