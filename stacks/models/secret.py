"""A stack's env values, encrypted at rest and shown masked."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from cfadmin import encryption
from cfadmin.validators import (
    validate_env_key,
    validate_env_value,
)
from stacks.models.stack import Stack, _manifest_of_parent


class StackSecret(models.Model):
    """An env var for the stack's services, encrypted at rest, shown only masked."""

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="secrets")
    key = models.CharField(max_length=128, validators=[validate_env_key])
    value_encrypted = models.TextField(editable=False)
    masked_value = models.CharField("value", max_length=16, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                fields=["stack", "key"],
                name="secret_key_unique_per_stack",
                violation_error_code="secret_key_taken",
                violation_error_message="This stack already has a value for this key.",
            ),
        ]

    def __str__(self) -> str:
        return self.key  # never the value: str() ends up in logs and the admin's history

    def set_value(self, plaintext: str) -> None:
        validate_env_value(plaintext)
        self.value_encrypted = encryption.encrypt(plaintext)
        self.masked_value = encryption.mask(plaintext)

    def reveal(self) -> str:
        """The plaintext, for the provisioning step that pushes it to Coolify. Nowhere else."""
        return encryption.decrypt(self.value_encrypted)

    def clean(self) -> None:
        manifest = _manifest_of_parent(self)
        if manifest is not None and self.key and self.key not in manifest.env_keys:
            raise ValidationError(
                {
                    "key": ValidationError(
                        "Template %(template)s does not use %(key)s; it takes: %(keys)s.",
                        code="unknown_env_key",
                        params={
                            "template": manifest.name,
                            "key": self.key,
                            "keys": ", ".join(manifest.env_keys) or "no env keys",
                        },
                    )
                }
            )
