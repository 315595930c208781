"""Health checks that live beside the core ones in ops.health, one module per concern
(backups: PocketBase backups; resources: server memory, disk, containers and volumes). Each
module lists CHECKS as CheckSpec tuples; ops.health adds them to its own. These modules must not
import ops.health (it imports them): a check function takes the HealthContext and returns
(status, message, details) like the core checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


class CheckSpec(NamedTuple):
    name: str
    function: Callable[[Any], tuple[str, str, dict[str, Any]]]
    critical: bool
    enabled: Callable[[], bool] = lambda: True
