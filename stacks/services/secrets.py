"""A stack's secret values: stored encrypted, rotated with a restart, re-encrypted under a
new key, and found by value (which stacks hold a leaked one)."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from cfadmin import encryption
from stacks.choices import OperationKind, StackStatus
from stacks.models import Operation, Stack, StackSecret
from stacks.services.operations import OperationRefused, request_operation

logger = logging.getLogger(__name__)

HOLDING_CHUNK = 500  # secrets read per database round trip while searching by value


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


def rotate_stack_secrets(
    stack: Stack,
    values: dict[str, str],
    *,
    actor: Any,
    parameters: dict[str, Any] | None = None,
) -> Operation:
    """Store new values (encrypted) and queue their push to Coolify and a restart, as one.
    `parameters` adds to the operation's (e.g. incident_id); never values."""
    if not values:
        raise OperationRefused("nothing_to_rotate", "Enter a new value for at least one key.")
    with transaction.atomic():
        operation = request_operation(
            stack,
            OperationKind.ROTATE_SECRETS,
            actor=actor,
            parameters={**(parameters or {}), "keys": sorted(values)},
        )
        store_secrets(stack, values)
    return operation


@sensitive_variables("value", "wanted", "plaintext")
def stacks_holding(value: str) -> list[tuple[Stack, str]]:
    """Every live (not deleted) stack with a stored secret equal to `value`, as (stack, key),
    ordered by tenant, stack and key.

    The secrets are read in chunks (`.iterator()`: 10,000 stacks never sit in memory), each
    decrypted in memory, compared in constant time and dropped; the plaintext is never stored,
    logged or put in an exception (sensitive_variables hides these locals from error reports).
    """
    wanted = value.encode("utf-8")
    found: list[tuple[Stack, str]] = []
    secrets = (
        StackSecret.objects.exclude(stack__status=StackStatus.DELETED)
        .select_related("stack__tenant")
        .order_by("stack__tenant__slug", "stack__stack_name", "stack_id", "key")
    )
    for secret in secrets.iterator(chunk_size=HOLDING_CHUNK):
        try:
            plaintext = encryption.decrypt(secret.value_encrypted).encode("utf-8")
        except encryption.InvalidToken:
            logger.warning("secret %s cannot be decrypted with any key: not compared", secret.pk)
            continue
        if hmac.compare_digest(plaintext, wanted):
            found.append((secret.stack, secret.key))
        del plaintext
    return found
