"""HTTP answers in Coolify's shapes (Laravel JSON responses)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if self.content_type == "application/json":
            return json.dumps(self.body).encode()
        return str(self.body).encode()


def error(status: int, message: str, **extra: Any) -> Response:
    return Response(status, {"message": message, **extra})


def validation_failed(errors: dict[str, Any] | list[str]) -> Response:
    # Controllers answer `['message' => 'Validation failed.', 'errors' => $errors]` with 422.
    return Response(422, {"message": "Validation failed.", "errors": errors})


def server_error() -> Response:
    # Laravel's exception handler for an uncaught exception with Accept: application/json.
    return Response(500, {"message": "Server Error"})
