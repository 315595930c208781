"""A health check's recent results as a small inline SVG (bars: colour by status, height by
latency). SVG fill attributes are not styles, so the CSP (no inline styles) allows them."""

from __future__ import annotations

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

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
    bar_width = round(step * 0.8, 1)
    bars = []
    # Plain formatting (numbers, a timestamp, a colour from a table); only the stored status is
    # escaped. format_html per bar escaped every number: a quarter of the dashboard's time.
    for i, result in enumerate(results):
        bar_height = round(max(2, result.latency_ms / slowest * height), 1)
        known = result.status in CheckStatus.values
        colour = CheckStatus(result.status).colour if known else UNKNOWN_COLOUR
        bars.append(
            f'<rect x="{round(i * step, 1)}" y="{round(height - bar_height, 1)}" '
            f'width="{bar_width}" height="{bar_height}" fill="{colour}"><title>'
            f"{result.checked_at:%Y-%m-%d %H:%M} {escape(result.status)} "
            f"{int(result.latency_ms)} ms</title></rect>"
        )
    return format_html(
        '<svg width="{}" height="{}" role="img" aria-label="recent results">{}</svg>',
        width,
        height,
        mark_safe("".join(bars)),
    )
