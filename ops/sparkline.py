"""A health check's recent results as a small inline SVG (bars: colour by status, height by
latency). SVG fill attributes are not styles, so the CSP (no inline styles) allows them."""

from __future__ import annotations

from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ops.models import CheckStatus, HealthCheckResult

SPARKLINE_POINTS = 48
UNKNOWN_COLOUR = "#6c757d"


def sparkline(
    results: list[HealthCheckResult], width: int = 160, height: int = 24
) -> SafeString | str:
    """One bar per result, oldest first; '' without results."""
    if not results:
        return ""
    slowest = max(r.latency_ms for r in results) or 1
    step = width / SPARKLINE_POINTS

    def bar(i: int, result: HealthCheckResult) -> tuple[Any, ...]:
        bar_height = round(max(2, result.latency_ms / slowest * height), 1)
        colour = (
            CheckStatus(result.status).colour
            if result.status in CheckStatus.values
            else UNKNOWN_COLOUR
        )
        return (
            round(i * step, 1),
            round(height - bar_height, 1),
            round(step * 0.8, 1),
            bar_height,
            colour,
            result.checked_at.strftime("%Y-%m-%d %H:%M"),
            result.status,
            result.latency_ms,
        )

    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} {} {} ms</title></rect>',
        (bar(i, r) for i, r in enumerate(results)),
    )
    return format_html(
        '<svg width="{}" height="{}" role="img" aria-label="recent results">{}</svg>',
        width,
        height,
        bars,
    )
