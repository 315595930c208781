"""What every app shares: the append-only audit trail."""

from __future__ import annotations

from typing import Any

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


class AuditEventQuerySet(models.QuerySet):
    # How many rows this queryset holds, when a search already counted them (see search()):
    # kept through what the admin applies after its search (ordering, deferred columns), gone
    # with any filter, which changes the rows.
    known_count: int | None = None

    def _clone(self) -> AuditEventQuerySet:
        clone = super()._clone()
        clone.known_count = self.known_count
        return clone

    def _filter_or_exclude(self, negate: bool, args: Any, kwargs: Any) -> AuditEventQuerySet:
        clone = super()._filter_or_exclude(negate, args, kwargs)
        clone.known_count = None
        return clone

    def search(self, text: str) -> AuditEventQuerySet:
        """Events found by every word of `text` (cfadmin.audit_search): by id, address, or the
        beginning of an actor, target, tenant slug or stack name, through indexes; when nothing
        begins so, by any part of those or of the message. No join, no DISTINCT."""
        from cfadmin.audit_search import (
            COMMON_MATCHES,
            audit_search_q,
            audit_substring_q,
            sqlite_match_count,
        )

        found = self.filter(audit_search_q(text, using=self.db))
        matches = sqlite_match_count(found)
        if matches is None:  # PostgreSQL: its planner picks the index for each case
            return found if found.exists() else self.filter(audit_substring_q(text))
        if not matches:
            return self.filter(audit_substring_q(text))
        if matches > COMMON_MATCHES:
            found = self.filter(audit_search_q(text, using=self.db, indexed=False))
        # The count came from the indexes: the list's paginator need not count the trail
        # again (without its indexes, for a common search).
        found.known_count = matches
        return found


class AuditEvent(models.Model):
    """Who did what to which object, when. Written only by `cfadmin.audit.record()`.

    The actor survives the user's deletion as `actor_repr` (Django's LogEntry cascades).
    `changes` holds masked values only: a secret is never stored here.
    """

    occurred_at = models.DateTimeField(auto_now_add=True)  # indexed with id: Meta.indexes
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

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        # Each filter of the trail's list with its order (newest first) is one index range:
        # the page is read from the index, not found by sorting every matching event.
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["occurred_at", "id"], name="audit_time_idx"),
            models.Index(fields=["actor_repr", "occurred_at"], name="audit_actor_name_time_idx"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_time_idx"),
            models.Index(fields=["action", "occurred_at"], name="audit_action_time_idx"),
            models.Index(fields=["tenant_slug", "occurred_at"], name="audit_tenant_time_idx"),
            models.Index(fields=["stack_name", "occurred_at"], name="audit_stack_time_idx"),
            # The search's prefixes (cfadmin.audit_search): PostgreSQL answers LIKE 'x%' only
            # from a pattern_ops index; SQLite uses the plain ones above.
            models.Index(
                fields=["actor_repr"],
                name="audit_actor_prefix_idx",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(
                fields=["target_repr"],
                name="audit_target_prefix_idx",
                opclasses=["varchar_pattern_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.actor_repr} {self.get_action_display().lower()} {self.target_repr}"
