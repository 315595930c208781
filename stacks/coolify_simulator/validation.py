"""The controllers' request checks for services: ServicesController::create_service
(SC:360-770), update_by_uuid (SC:1158-1300), logs_by_uuid (SC:918-960) and
validateIncomingRequest (bootstrap/helpers/api.php)."""

from __future__ import annotations

import base64
import json
from typing import Any

from stacks.coolify_simulator import parser, rules
from stacks.coolify_simulator.responses import Response, validation_failed

SERVICE_CREATE_FIELDS = frozenset(
    {  # ServicesController::create_service $allowedFields — no connect_to_docker_network
        "type",
        "name",
        "description",
        "project_uuid",
        "environment_name",
        "environment_uuid",
        "server_uuid",
        "destination_uuid",
        "instant_deploy",
        "docker_compose_raw",
        "urls",
        "force_domain_override",
        "is_container_label_escape_enabled",
        "tags",
    }
)
SERVICE_UPDATE_FIELDS = frozenset(
    {  # ServicesController::update_by_uuid $allowedFields
        "name",
        "description",
        "instant_deploy",
        "docker_compose_raw",
        "connect_to_docker_network",
        "urls",
        "force_domain_override",
        "is_container_label_escape_enabled",
    }
)
URLS_ITEM_MESSAGE = (
    "An item in the urls array has invalid fields. Only name and url fields are supported."
)
NOT_BASE64 = "The docker_compose_raw should be base64 encoded."


def filled(value: Any) -> bool:
    # Laravel filled(): not null, not a blank string, not an empty array.
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    return not (isinstance(value, list | dict) and not value)


def service_errors(body: dict[str, Any], *, create: bool) -> dict[str, list[str]]:
    """The Validator::make of create_service / update_by_uuid, in rule order."""
    specs: dict[str, list[Any]] = {}
    errors: dict[str, list[str]] = {}
    if create:
        both_missing = body.get("type") is None and body.get("docker_compose_raw") is None
        for field, other in (("type", "docker compose raw"), ("docker_compose_raw", "type")):
            value = body.get(field, rules.MISSING)
            if both_missing:  # required_without
                errors[field] = [
                    f"The {field.replace('_', ' ')} field is required when {other} is not present."
                ]
            elif value is not rules.MISSING and value is not None and not isinstance(value, str):
                errors[field] = [f"The {field.replace('_', ' ')} field must be a string."]
        specs.update(
            {
                "project_uuid": ["string", "required"],
                "environment_name": ["string", "nullable"],
                "environment_uuid": ["string", "nullable"],
                "server_uuid": ["string", "required"],
                "destination_uuid": ["string", "nullable"],
            }
        )
    specs.update(
        {
            "name": ["string", "max:255"],
            "description": ["string", "nullable"],
            "instant_deploy": ["boolean"],
        }
    )
    if not create:
        specs["connect_to_docker_network"] = ["boolean"]
        specs["docker_compose_raw"] = ["string", "nullable"]
    specs["urls"] = ["array", "nullable"]
    errors = rules.merge_errors(errors, rules.validate(body, specs))
    urls = body.get("urls")
    if isinstance(urls, list):
        for index, item in enumerate(urls):
            item_rules = {f"urls.{index}": ["array:name,url"]}
            flat: dict[str, Any] = {f"urls.{index}": item}
            if isinstance(item, dict):
                flat[f"urls.{index}.name"] = item.get("name", rules.MISSING)
                if "url" in item:
                    flat[f"urls.{index}.url"] = item["url"]
            item_rules[f"urls.{index}.name"] = ["string", "required"]
            item_rules[f"urls.{index}.url"] = ["string", "nullable"]
            flat = {k: v for k, v in flat.items() if v is not rules.MISSING}
            errors = rules.merge_errors(
                errors,
                rules.validate(flat, item_rules, {f"urls.{index}.array": URLS_ITEM_MESSAGE}),
            )
    errors = rules.merge_errors(
        errors,
        rules.validate(
            body,
            {
                "force_domain_override": ["boolean"],
                "is_container_label_escape_enabled": ["boolean"],
            },
        ),
    )
    if create:
        errors = rules.merge_errors(errors, rules.validate(body, {"tags": ["array", "nullable"]}))
        tags = body.get("tags")
        if isinstance(tags, list):
            for index, tag in enumerate(tags):
                errors = rules.merge_errors(
                    errors,
                    rules.validate({f"tags.{index}": tag}, {f"tags.{index}": ["string", "min:2"]}),
                )
    return errors


def log_lines(value: Any) -> int:
    # normalizeLogLines (bootstrap/helpers/docker.php:1480): int > 0, else 100; at most 10000.
    try:
        lines = int(str(value).strip()) if value is not None else 0
    except ValueError:
        return 100
    return 100 if lines <= 0 else min(lines, 10000)


def json_body(headers: dict[str, str], body: bytes) -> tuple[Any, Response | None]:
    # validateIncomingRequest (bootstrap/helpers/api.php): JSON content type, valid, not empty.
    if "application/json" not in headers.get("content-type", ""):
        return None, Response(
            400, {"message": "Invalid request.", "error": "Content-Type must be application/json."}
        )
    try:
        payload = json.loads(body or b"")
    except ValueError:
        return None, Response(400, {"message": "Invalid request.", "error": "Invalid JSON."})
    if not payload or not isinstance(payload, dict):
        return None, Response(400, {"message": "Invalid request.", "error": "Empty JSON."})
    return payload, None


def decode_compose(raw: Any) -> tuple[str, Response | None]:
    # isBase64Encoded (strict), then mb_detect_encoding UTF-8 — both the same 422 string.
    not_base64 = validation_failed({"docker_compose_raw": NOT_BASE64})
    if not rules.is_base64_encoded(raw):
        return "", not_base64
    try:
        return base64.b64decode(raw).decode("utf-8"), None
    except UnicodeDecodeError:
        return "", not_base64


def parse_or_422(text: str, uuid: str) -> tuple[parser.ParsedCompose | None, Response | None]:
    # Yaml::parse errors propagate (→ 500 in handle()); validateDockerComposeForInjection → 422.
    try:
        return parser.parse(text, uuid), None
    except parser.ComposeError as exc:
        return None, validation_failed({"docker_compose_raw": str(exc)})
