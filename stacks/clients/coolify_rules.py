"""Coolify's own input rules, so cfadmin refuses in the preview what Coolify would refuse later.

From app/Support/ValidationPatterns.php (v4.3.11): `nameRules()` (required, 3 to 255 characters,
NAME_PATTERN) and `descriptionRules()` (at most 255, DESCRIPTION_PATTERN), used by
ProjectController and ServicesController for `name` and `description`. Laravel's global
TrimStrings middleware (app/Http/Kernel.php) trims every request string before validation, so
the rules apply to the trimmed value. PHP's `/u` patterns match Unicode classes: \\p{L} letters,
\\p{M} marks, \\p{N} numbers, \\s white space.
"""

from __future__ import annotations

import unicodedata

NAME_MIN = 3
NAME_MAX = 255
DESCRIPTION_MAX = 255
NAME_EXTRA = frozenset("-_.@/&()#,:+")  # NAME_PATTERN: [\p{L}\p{M}\p{N}\s\-_.@\/&()#,:+]
DESCRIPTION_EXTRA = frozenset("-_.,!?()'\"+=*@/&")  # DESCRIPTION_PATTERN: no ':' and no '#'
NAME_MESSAGE = "Coolify accepts only letters, digits, spaces and - _ . / @ & ( ) # , : + in a name"
DESCRIPTION_MESSAGE = (
    "Coolify accepts only letters, digits, spaces and - _ . , ! ? ( ) ' \" + = * @ / & in a "
    "description"
)


def _allowed(char: str, extra: frozenset[str]) -> bool:
    return char in extra or char.isspace() or unicodedata.category(char)[0] in "LMN"


def name_problem(value: str) -> str | None:
    """Why Coolify would refuse `value` as a project or service name, or None."""
    text = value.strip()
    if len(text) < NAME_MIN:
        return f"Coolify needs a name of at least {NAME_MIN} characters"
    if len(text) > NAME_MAX:
        return f"Coolify takes a name of at most {NAME_MAX} characters"
    return _refused_characters(text, NAME_EXTRA, NAME_MESSAGE)


def description_problem(value: str) -> str | None:
    """Why Coolify would refuse `value` as a description, or None (empty is allowed)."""
    text = value.strip()
    if len(text) > DESCRIPTION_MAX:
        return f"Coolify takes a description of at most {DESCRIPTION_MAX} characters"
    return _refused_characters(text, DESCRIPTION_EXTRA, DESCRIPTION_MESSAGE)


def _refused_characters(text: str, extra: frozenset[str], message: str) -> str | None:
    bad = sorted({c for c in text if not _allowed(c, extra)})
    return f"{message} (not {' '.join(repr(c) for c in bad)})" if bad else None


def description(text: str) -> str:
    """`text` made acceptable as a Coolify description: refused characters become spaces."""
    cleaned = "".join(c if _allowed(c, DESCRIPTION_EXTRA) else " " for c in text)
    return " ".join(cleaned.split())[:DESCRIPTION_MAX]
