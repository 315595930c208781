"""Service environment variables, as app/Models/EnvironmentVariable.php stores and shows them."""

from __future__ import annotations

import json
import re
from typing import Any

from stacks.coolify_simulator import rules
from stacks.coolify_simulator.responses import Response, error, validation_failed

BOOLEAN_FIELDS = (
    "is_preview",
    "is_multiline",
    "is_literal",
    "is_runtime",
    "is_buildtime",
    "is_shown_once",
    "is_shared",
    "is_required",
)
# EnvironmentVariable::$fillable — anything else in a bulk item is dropped by updateOrCreate.
FILLABLE = frozenset(
    {"key", "value", "comment", "resourceable_type", "resourceable_id", "version", "order"}
    | set(BOOLEAN_FIELDS)
)
SHARED_VARIABLE = re.compile(r"{{(.*?)}}")
RESOURCEABLE_TYPE = "App\\Models\\Service"


def store_value(value: Any) -> str | None:
    # EnvironmentVariable::value() set: encrypt(trim($v)); null stays null (:370-381).
    if value is None:
        return None
    return str(value).strip()


def real_value(env: dict[str, Any]) -> str:
    """EnvironmentVariable::realValue (:186-221) with get_real_environment_variables (:296)."""
    value = env.get("value")
    if value is not None and value != "":
        value = value.strip()
        # {{team|project|environment|server.KEY}}: replaced by a shared variable when one
        # exists. The simulator has none, so every reference stays literal (as Coolify leaves
        # an unknown one).
    text = "" if value is None else value
    if text.startswith(("{", "[")) and _is_json(text):  # raw JSON skips escaping (#6160)
        return text
    if env.get("is_literal") or env.get("is_multiline"):
        return f"'{text}'"
    return escape_env_variables(text)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def escape_env_variables(value: str) -> str:
    # bootstrap/helpers/docker.php:1516 escapeEnvVariables(): str_replace in this order.
    for search, replace in (
        ("\\", "\\\\"),
        ("\r", "\\r"),
        ("\t", "\\t"),
        ("\x00", "\\0"),
        ('"', '\\"'),
        ("'", "\\'"),
    ):
        value = value.replace(search, replace)
    return value


def new_env(env_id: int, uuid: str, key: str, version: str, now: str) -> dict[str, Any]:
    # Column defaults: is_runtime/is_buildtime true (EnvironmentVariable::$attributes).
    return {
        "id": env_id,
        "uuid": uuid,
        "key": key,
        "value": None,
        "comment": None,
        "is_literal": False,
        "is_multiline": False,
        "is_preview": False,
        "is_runtime": True,
        "is_buildtime": True,
        "is_shown_once": False,
        "is_shared": False,
        "is_required": False,
        "order": None,
        "version": version,
        "resourceable_type": RESOURCEABLE_TYPE,
        "resourceable_id": None,
        "created_at": now,
        "updated_at": now,
    }


def fill(env: dict[str, Any], attributes: dict[str, Any], now: str) -> None:
    """Model::fill with the fillable attributes only; `value` through its mutator."""
    for name, value in attributes.items():
        if name not in FILLABLE or name == "key":
            continue
        if name == "value":
            env["value"] = store_value(value)
        elif name in BOOLEAN_FIELDS:
            env[name] = rules.request_boolean(value, False)
        else:
            env[name] = value
    env["updated_at"] = now


def public_env(env: dict[str, Any], can_read_sensitive: bool) -> dict[str, Any]:
    """The env as the API shows it: appended attributes; `value`/`real_value` only with
    root or read:sensitive (ServicesController::removeSensitiveData) and never for
    is_shown_once; `id` and `resourceable*` hidden (makeHidden)."""
    public = {
        k: v
        for k, v in env.items()
        if k not in ("id", "value", "resourceable_type", "resourceable_id") and v is not None
    }
    value = real_value(env)
    public["is_shared"] = False
    public["is_really_required"] = bool(env.get("is_required")) and value == ""
    public["is_buildpack_control"] = env["key"].startswith(("NIXPACKS_", "RAILPACK_"))
    public["is_coolify"] = env["key"].startswith("SERVICE_")
    if can_read_sensitive and not env.get("is_shown_once"):
        if env.get("value") is not None:
            public["value"] = env["value"]
        public["real_value"] = value
    return public


BULK_RULES = {
    "key": rules.env_key_rules(),
    "value": ["string", "nullable"],
    "is_literal": ["boolean"],
    "is_multiline": ["boolean"],
    "is_shown_once": ["boolean"],
    "comment": ["string", "nullable", "max:256"],
}
# customApiValidator (bootstrap/helpers/shared.php:2417) sets 'required' => 'This field is
# required.'; the regex keeps Laravel's default "The key field format is invalid."
BULK_MESSAGES = {"required": "This field is required."}


def bulk_upsert(
    store: dict[str, dict[str, Any]],
    data: Any,
    make_env: Any,
    now: str,
) -> tuple[list[dict[str, Any]], Response | None]:
    """ServicesController::create_bulk_envs (:1597-1654): items in order, each validated then
    `updateOrCreate(['key' => $key], $item)` with the whole item; the first bad item answers
    422 and the earlier ones stay saved. A missing `value` keeps the existing value."""
    if not data:
        return [], error(400, "Bulk data is required.")
    if not isinstance(data, list | dict):
        return [], error(400, "Bulk data is required.")
    saved = []
    for item in data.values() if isinstance(data, dict) else data:
        if not isinstance(item, dict):
            # array_key_exists() on a non-array throws a TypeError → Laravel's 500.
            return saved, Response(500, {"message": "Server Error"})
        item = dict(item)
        if "key" in item:
            item["key"] = rules.php_trim(str(item["key"]) if item["key"] is not None else "")
        problems = rules.validate(item, BULK_RULES, BULK_MESSAGES)
        if problems:
            return saved, validation_failed(problems)
        key = item["key"].strip().replace(" ", "_")
        env = store.get(key)
        if env is None:
            env = make_env(key)
            store[key] = env
        fill(env, item, now)
        saved.append(env)
    return saved, None
