"""Durations as people read them ('3h 12m'), shared by outages and incidents."""

from __future__ import annotations

from datetime import timedelta


def duration_text(duration: timedelta) -> str:
    seconds = max(0, int(duration.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"
