"""The status page's uptime bars: one bar per UTC day for the last UPTIME_DAYS days per
component, from the daily rollups (one query for every component and day).

Uptime here is the share of results that were not down: a degraded component (a warning) still
serves its customers, so it counts as up, and its bar is coloured degraded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ops.models import HealthDailyRollup
from ops.models.health import utc_day

UPTIME_DAYS = 90
# A day with less uptime than this is an outage day (red); above it, a partial one (orange).
OUTAGE_DAY_BELOW = 0.95


# The bars' colours, as the page's legend names them.
BAR_LEGEND = (
    ("up", "Operational"),
    ("degraded", "Degraded"),
    ("partial", "Partial outage"),
    ("outage", "Outage"),
    ("nodata", "No data"),
)


@dataclass(frozen=True)
class DayBar:
    """One day of one component: its results counted (none: no data)."""

    day: date
    total: int = 0
    warning: int = 0
    down: int = 0

    @property
    def uptime(self) -> float | None:
        return (self.total - self.down) / self.total if self.total else None

    @property
    def state(self) -> str:
        """The bar's colour: nodata, up, degraded, partial or outage."""
        if not self.total:
            return "nodata"
        if self.down:
            return "partial" if (self.uptime or 0) >= OUTAGE_DAY_BELOW else "outage"
        return "degraded" if self.warning else "up"

    @property
    def label(self) -> str:
        """What the bar says when pointed at (its title)."""
        if self.uptime is None:
            return f"{self.day:%Y-%m-%d}: no data"
        return f"{self.day:%Y-%m-%d}: {percent(self.uptime)} uptime"


@dataclass(frozen=True)
class UptimeBars:
    bars: list[DayBar]  # oldest first

    @property
    def uptime(self) -> float | None:
        """Over the whole period: results not down / results (days without data left out)."""
        total = sum(bar.total for bar in self.bars)
        return (total - sum(bar.down for bar in self.bars)) / total if total else None

    @property
    def uptime_text(self) -> str:
        return percent(self.uptime) if self.uptime is not None else "no data"


def percent(share: float) -> str:
    """99.95% style: two decimals, but 100% only when nothing was down."""
    text = f"{share * 100:.2f}".rstrip("0").rstrip(".")
    if text == "100" and share < 1:
        return "99.99%"
    return f"{text}%"


def days(now: datetime, count: int = UPTIME_DAYS) -> list[date]:
    """The last `count` UTC days, today included, oldest first."""
    today = utc_day(now)
    return [today - timedelta(days=offset) for offset in range(count - 1, -1, -1)]


def uptime_bars(
    check_names: Iterable[str], now: datetime, count: int = UPTIME_DAYS
) -> dict[str, UptimeBars]:
    """Per check, its bars over the last `count` days, in one query over the daily rollups."""
    names = list(check_names)
    period = days(now, count)
    counted: dict[tuple[str, date], DayBar] = {
        (row["check_name"], row["day"]): DayBar(
            row["day"], row["total"], row["warning"], row["down"]
        )
        for row in HealthDailyRollup.objects.filter(
            check_name__in=names, day__gte=period[0], day__lte=period[-1]
        ).values("check_name", "day", "total", "warning", "down")
    }
    return {
        name: UptimeBars([counted.get((name, day), DayBar(day)) for day in period])
        for name in names
    }
