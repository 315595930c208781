"""Asking whether a user holds a permission: the one place `has_perm` is called with a name.
Each app keeps its permission names as constants in its own `permissions.py`."""

from __future__ import annotations

from typing import Any

VIEW_AUDIT_TRAIL = "cfadmin.view_auditevent"


def may(user: Any, permission: str) -> bool:
    """Whether `user` holds `permission` ("app_label.codename", one of an app's constants)."""
    return bool(user.has_perm(permission))
