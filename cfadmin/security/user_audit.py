"""The audit trail of staff accounts: what a user or role looked like (with its groups and
permissions), and every password change, wherever it happens.

Password changes are caught at the model (admin form, a user's own change, `changepassword`),
because Django sends no signal for them. Never the password nor its hash: only that it changed.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import is_password_usable
from django.contrib.auth.models import Group
from django.db.models.signals import post_save, pre_save

from cfadmin import audit
from cfadmin.models import AuditAction
from cfadmin.security import request_context

PASSWORD_EVENT_ATTRIBUTE = "_cfadmin_password_event"
CHANGED = "changed"
DISABLED = "disabled"


def _permission_names(permissions: Any) -> list[str]:
    return sorted(
        f"{app}.{codename}"
        for app, codename in permissions.values_list("content_type__app_label", "codename")
    )


def user_snapshot(user: Any) -> dict[str, Any]:
    """The user's fields (password masked), group names and direct permissions."""
    data = audit.snapshot(user)
    if user.pk is not None:
        data["groups"] = sorted(user.groups.values_list("name", flat=True))
        data["user_permissions"] = _permission_names(user.user_permissions)
    return data


def group_snapshot(group: Group) -> dict[str, Any]:
    data = audit.snapshot(group)
    if group.pk is not None:
        data["permissions"] = _permission_names(group.permissions)
    return data


def note_password_change(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """pre_save: compare the stored hash with the new one, and say why it differs."""
    update_fields = kwargs.get("update_fields")
    if raw or instance.pk is None or (update_fields and "password" not in update_fields):
        return
    stored = (
        sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    )
    if stored is None or stored == instance.password:
        return
    if getattr(instance, "_password", None) is not None:  # set_password() was called
        setattr(instance, PASSWORD_EVENT_ATTRIBUTE, CHANGED)
    elif not is_password_usable(instance.password):
        setattr(instance, PASSWORD_EVENT_ATTRIBUTE, DISABLED)
    # Otherwise Django re-hashed the same password at login (a newer hasher): not a change.


def record_password_change(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    event = instance.__dict__.pop(PASSWORD_EVENT_ATTRIBUTE, None)
    if event is None or created:
        return
    actor = request_context.current_origin().user
    name = instance.get_username()
    if event == DISABLED:
        message = f"Password login disabled for {name}"
    elif actor is not None and actor.pk == instance.pk:
        message = f"{name} changed their own password"
    else:
        message = f"Password changed for {name}"
    audit.record(actor=actor, action=AuditAction.PASSWORD_CHANGED, target=instance, message=message)


def connect() -> None:
    User = get_user_model()
    pre_save.connect(note_password_change, sender=User, dispatch_uid="cfadmin.audit.pw_pre")
    post_save.connect(record_password_change, sender=User, dispatch_uid="cfadmin.audit.pw_post")
