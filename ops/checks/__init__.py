"""Health checks that live beside the core ones in ops.health, one module per concern
(backups: PocketBase backups; resources: server memory, disk, containers and volumes). Each
module lists CHECKS; `Check` is defined here for them and ops.health alike, which adds them to
its own. These modules must not import ops.health (it imports them): a check function takes
the HealthContext and returns (status, message, details) like the core checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    name: str
    function: Callable[[Any], tuple[str, str, dict[str, Any]]]
    critical: bool
    enabled: Callable[[], bool] = lambda: True
