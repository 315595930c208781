"""(issue 15, being built) The incident response feature "evidence"."""

from __future__ import annotations

from typing import Any

from ops.response import Feature

FEATURE = Feature(key="evidence")


def capture_after_isolation(operation: Any) -> None:
    """OPERATION_SUCCESS_HOOKS: an isolated stack's evidence, on the incident that asked."""
