"""The hardening audit report of stack templates (rendered for sample names), as the
audit_templates command prints it and CI checks it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stacks.catalog import TEMPLATES_DIR
from stacks.compose.errors import TemplateError
from stacks.compose.manifest import load_manifest
from stacks.compose.render import render_sample


def audit_report(names: list[str], folder: Path = TEMPLATES_DIR) -> dict[str, dict[str, Any]]:
    """Per template: ok (no finding, no error), version, findings and the error if unusable."""
    report: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            manifest = load_manifest(name, folder)
            rendered = render_sample(manifest)
        except TemplateError as exc:
            report[name] = {"ok": False, "version": None, "findings": [], "error": str(exc)}
            continue
        report[name] = {
            "ok": not rendered.findings,
            "version": manifest.version,
            "findings": [f.as_dict() for f in rendered.findings],
            "error": None,
        }
    return report
