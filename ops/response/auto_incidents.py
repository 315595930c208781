"""(issue 15, being built) Incidents cfadmin opens by itself."""

from __future__ import annotations

from typing import Any


def after_health_record(results: list[Any]) -> None:
    """Called by ops.health.record with the results it just stored, after they are committed."""
