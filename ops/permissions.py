"""The ops permissions the admin checks, as constants, and `may` to ask about one."""

from __future__ import annotations

from typing import Any

RUN_HEALTHCHECK = "ops.run_healthcheck"
ADD_CHECKLISTRUN = "ops.add_checklistrun"
CHANGE_CHECKLISTITEM = "ops.change_checklistitem"
ADD_INCIDENT = "ops.add_incident"
CHANGE_INCIDENT = "ops.change_incident"


def may(user: Any, perm: str) -> bool:
    """Whether `user` holds `perm` (one of the constants above)."""
    return bool(user.has_perm(perm))
