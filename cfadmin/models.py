"""What every app shares: the append-only audit trail."""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models


class AuditAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Changed"
    DELETE = "delete", "Deleted"
    OPERATION = "operation", "Operation requested"
    OPERATION_RESULT = "operation_result", "Operation finished"
    SECRETS_ROTATED = "secrets_rotated", "Encryption keys rotated"
    LOGIN = "login", "Logged in"
    LOGOUT = "logout", "Logged out"
    LOGIN_FAILED = "login_failed", "Login failed"
    LOCKED_OUT = "locked_out", "Login refused (locked out)"
    LOCKOUT_CLEARED = "lockout_cleared", "Lockout cleared"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    MFA_ENROLLED = "mfa_enrolled", "Second factor enrolled"
    MFA_FAILED = "mfa_failed", "Second factor failed"
    MFA_RECOVERY_CODE_USED = "mfa_recovery_used", "Recovery code used"
    MFA_RESET = "mfa_reset", "Second factor reset"


class AuditEvent(models.Model):
    """Who did what to which object, when. Written only by `cfadmin.audit.record()`.

    The actor survives the user's deletion as `actor_repr` (Django's LogEntry cascades).
    `changes` holds masked values only: a secret is never stored here.
    """

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_repr = models.CharField("actor", max_length=150)
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField("target", max_length=255, blank=True)
    # Denormalised so the trail filters by tenant/stack without joins through generic keys.
    tenant_slug = models.CharField("tenant", max_length=63, blank=True, db_index=True)
    stack_name = models.CharField("stack", max_length=63, blank=True, db_index=True)
    message = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True)
    # Where the request came from (cfadmin/security/proxies.py); empty outside a request.
    address = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    user_agent = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.actor_repr} {self.get_action_display().lower()} {self.target_repr}"
