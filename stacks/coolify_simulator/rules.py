"""Request validation as Coolify's Laravel stack does it.

- The global middlewares TrimStrings and ConvertEmptyStringsToNull (app/Http/Kernel.php) run on
  query parameters and, recursively, on the JSON body before any controller sees them.
- A small Laravel Validator: rule order, implicit `required` stopping the rest, `nullable`,
  and Laravel's default English messages (lang/en/validation.php).
- ValidationPatterns::nameRules()/descriptionRules() with their own messages
  (app/Support/ValidationPatterns.php).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable
from typing import Any

# Illuminate\Foundation\Http\Middleware\TrimStrings::$neverTrim (exact dotted keys only).
NEVER_TRIM = frozenset({"current_password", "password", "password_confirmation"})
# Str::trim() (Laravel 11+): Unicode whitespace plus BOM, zero-width space and LRM.
_TRIM_CHARS = "\ufeff\u200b\u200e"


def php_trim(value: str) -> str:
    """Illuminate\\Support\\Str::trim: whitespace (Unicode), BOM, ZWSP and LRM at both ends."""
    start, end = 0, len(value)
    while start < end and (value[start].isspace() or value[start] in _TRIM_CHARS):
        start += 1
    while end > start and (value[end - 1].isspace() or value[end - 1] in _TRIM_CHARS):
        end -= 1
    return value[start:end]


def clean_input(value: Any, path: str = "") -> Any:
    """TrimStrings then ConvertEmptyStringsToNull, recursively (app/Http/Kernel.php:51-62).

    `"  x\\n"` → `"x"`; `""` and `"   "` → None. Keys in NEVER_TRIM keep their value when
    they sit at the top level (the middleware's except list holds exact dotted keys)."""
    if isinstance(value, dict):
        return {k: clean_input(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_input(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
    if isinstance(value, str):
        if path in NEVER_TRIM:
            return value if value != "" else None
        trimmed = php_trim(value)
        return trimmed if trimmed != "" else None
    return value


# --- Laravel validator (Illuminate\Validation\Validator) -------------------------------------

MISSING = object()
Rule = str | Callable[[Any], bool]

DEFAULT_MESSAGES = {  # lang/en/validation.php (Laravel 11/12)
    "required": "The {attribute} field is required.",
    "string": "The {attribute} field must be a string.",
    "min": "The {attribute} field must be at least {param} characters.",
    "max": "The {attribute} field must not be greater than {param} characters.",
    "regex": "The {attribute} field format is invalid.",
    "boolean": "The {attribute} field must be true or false.",
    "array": "The {attribute} field must be an array.",
    "integer": "The {attribute} field must be an integer.",
}


def _display(attribute: str) -> str:
    # Validator::getDisplayableAttribute: snake_case → words.
    return attribute.replace("_", " ")


def _size(value: Any) -> int:
    if isinstance(value, list | dict):
        return len(value)
    return len(str(value))


def is_laravel_boolean(value: Any) -> bool:
    # validateBoolean: true, false, 0, 1, '0', '1'.
    return value in (True, False, 0, 1, "0", "1") and not isinstance(value, float)


def validate(
    data: dict[str, Any],
    rules: dict[str, list[Any]],
    messages: dict[str, str] | None = None,
) -> dict[str, list[str]]:
    """Each attribute's rules in order; `required` failing stops that attribute
    (Validator::shouldStopValidating); a missing attribute skips non-implicit rules
    (presentOrRuleIsImplicit); `nullable` + null skips the rest (isNotNullIfMarkedAsNullable)."""
    messages = messages or {}
    errors: dict[str, list[str]] = {}
    for attribute, attribute_rules in rules.items():
        value = data.get(attribute, MISSING) if isinstance(data, dict) else MISSING
        nullable = "nullable" in attribute_rules
        for rule in attribute_rules:
            if rule == "nullable":
                continue
            name, _, param = rule.partition(":") if isinstance(rule, str) else ("regex", "", "")
            implicit = name == "required"
            if not implicit:
                if value is MISSING:
                    continue
                if value is None and nullable:
                    continue
                if isinstance(value, str) and value.strip() == "":
                    continue
            if _passes(name, param, rule, value):
                continue
            text = messages.get(f"{attribute}.{name}") or messages.get(name)
            text = text or DEFAULT_MESSAGES[name]
            errors.setdefault(attribute, []).append(
                text.replace(":min", param)
                .replace(":max", param)
                .format(attribute=_display(attribute), param=param)
            )
            if implicit:
                break
    return errors


def _passes(name: str, param: str, rule: Any, value: Any) -> bool:
    if name == "required":
        if value is MISSING or value is None:
            return False
        if isinstance(value, str) and value.strip() == "":
            return False
        return not (isinstance(value, list | dict) and not value)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return is_laravel_boolean(value)
    if name == "array":
        if not isinstance(value, list | dict):
            return False
        if param:  # array:name,url — only these keys (validateArray)
            keys = value.keys() if isinstance(value, dict) else range(len(value))
            return not (set(map(str, keys)) - set(param.split(",")))
        return True
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "min":
        return _size(value) >= int(param)
    if name == "max":
        return _size(value) <= int(param)
    if name == "regex":
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            return False
        return bool(rule(str(value)))
    raise ValueError(f"unknown rule {name}")


# --- ValidationPatterns (app/Support/ValidationPatterns.php) --------------------------------


def _pattern(extra: str) -> Callable[[str], bool]:
    """A PCRE `^[\\p{L}\\p{M}\\p{N}\\s<extra>]+$/u` without \\p{…} support in `re`: the
    Unicode general categories L*, M*, N* are looked up with unicodedata. PCRE's `$` also
    matches before a final newline, and `\\s` covers it anyway."""

    def matches(value: str) -> bool:
        if value == "":
            return False
        for char in value:
            if char in extra or char.isspace():  # PHP's /u turns on PCRE2_UCP: Unicode \s
                continue
            if unicodedata.category(char)[0] in "LMN":
                continue
            return False
        return True

    return matches


# NAME_PATTERN = '/^[\p{L}\p{M}\p{N}\s\-_.@\/&()#,:+]+$/u' (ValidationPatterns.php:13)
name_pattern = _pattern("-_.@/&()#,:+")
# DESCRIPTION_PATTERN = '/^[\p{L}\p{M}\p{N}\s\-_.,!?()\'\"+=*@\/&]+$/u' (:18)
description_pattern = _pattern("-_.,!?()'\"+=*@/&")

NAME_MESSAGES = {  # ValidationPatterns::nameMessages() (:458-466)
    "name.regex": "The name may only contain letters (including Unicode), numbers, spaces, "
    "and these characters: - _ . / @ & ( ) # , : +",
    "name.min": "The name must be at least :min characters.",
    "name.max": "The name may not be greater than :max characters.",
}
DESCRIPTION_MESSAGES = {  # ValidationPatterns::descriptionMessages() (:471-477)
    "description.regex": "The description may only contain letters (including Unicode), "
    "numbers, spaces, and common punctuation: - _ . , ! ? ( ) ' \" + = * / @ &",
    "description.max": "The description may not be greater than :max characters.",
}
COMBINED_MESSAGES = {**NAME_MESSAGES, **DESCRIPTION_MESSAGES}


def name_rules(required: bool = True) -> list[Any]:
    # ValidationPatterns::nameRules(): required|nullable, string, min:3, max:255, regex.
    return ["required" if required else "nullable", "string", "min:3", "max:255", name_pattern]


def description_rules() -> list[Any]:
    # ValidationPatterns::descriptionRules(): nullable, string, max:255, regex.
    return ["nullable", "string", "max:255", description_pattern]


# ENVIRONMENT_VARIABLE_KEY_PATTERN = '/\A[A-Za-z_][A-Za-z0-9_.]*\z/u' (ValidationPatterns:109)
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def env_key_rules() -> list[Any]:
    # ValidationPatterns::environmentVariableKeyRules(): required, string, max:255, regex.
    return ["required", "string", "max:255", lambda v: ENV_KEY.fullmatch(v) is not None]


def unknown_fields(body: dict[str, Any], allowed: frozenset[str]) -> dict[str, list[str]]:
    # `$errors->add($field, 'This field is not allowed.')` for array_diff(keys, $allowedFields).
    return {k: ["This field is not allowed."] for k in body if k not in allowed}


def merge_errors(*groups: dict[str, list[str]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for group in groups:
        for key, values in group.items():
            merged.setdefault(key, []).extend(values)
    return merged


# --- small PHP helpers -------------------------------------------------------------------------


def is_base64_encoded(value: Any) -> bool:
    # bootstrap/helpers/shared.php:2413 isBase64Encoded():
    # base64_encode(base64_decode($v, true)) === $v — the strict, canonical form only.
    if not isinstance(value, str):
        return False
    try:
        decoded = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return base64.b64encode(decoded).decode() == value


def request_boolean(value: Any, default: bool) -> bool:
    # Request::boolean($key, $default): FILTER_VALIDATE_BOOLEAN; anything unrecognised → false.
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "on", "yes")


def filter_boolean_or_none(value: Any) -> bool | None:
    # filter_var($v, FILTER_VALIDATE_BOOLEAN, FILTER_NULL_ON_FAILURE).
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no", ""):
        return False
    return None


TAGS = re.compile(r"<[^>]*>?")


def strip_tags(value: Any) -> str:
    # HasSafeStringAttribute (app/Traits/HasSafeStringAttribute.php): strip_tags($value);
    # strip_tags(null) is "" in PHP 8.
    if value is None:
        return ""
    return TAGS.sub("", str(value))
