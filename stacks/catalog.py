"""Which stack templates exist. The compose files and manifests live in compose_templates/."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError

TEMPLATES_DIR = Path(__file__).resolve().parent / "compose_templates"
MANIFEST_FILE = "manifest.yaml"


def template_names(templates_dir: Path = TEMPLATES_DIR) -> list[str]:
    """Names of the templates in a folder (default: those shipped with cfadmin), sorted."""
    return sorted(
        path.parent.name for path in templates_dir.glob(f"*/{MANIFEST_FILE}") if path.is_file()
    )


def validate_template_name(value: str) -> None:
    names = template_names()
    if value not in names:
        raise ValidationError(
            "Unknown template %(value)r; choose one of: %(names)s.",
            code="unknown_template",
            params={"value": value, "names": ", ".join(names)},
        )
