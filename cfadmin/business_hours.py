"""Business hours, for response targets that count them only (the runbook's "4h business").

No Django here: settings parse BUSINESS_HOURS / BUSINESS_DAYS / BUSINESS_TIME_ZONE with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class BusinessHours:
    opens: time
    closes: time
    weekdays: frozenset[int]  # 0 = Monday
    zone: ZoneInfo

    @classmethod
    def parse(cls, hours: str, days: list[str], zone: str) -> BusinessHours:
        """From the settings' text; a ValueError names the variable and the rule."""
        opens_text, sep, closes_text = hours.strip().partition("-")
        try:
            if not sep:
                raise ValueError
            opens = time.fromisoformat(opens_text.strip())
            closes = time.fromisoformat(closes_text.strip())
        except ValueError:
            raise ValueError(
                f"BUSINESS_HOURS={hours!r}: write opening and closing time as HH:MM-HH:MM, "
                "e.g. 09:00-17:00"
            ) from None
        if closes <= opens:
            raise ValueError(f"BUSINESS_HOURS={hours!r}: closing time must be after opening time")
        names = [day.strip().lower()[:3] for day in days if day.strip()]
        unknown = [day for day in names if day not in DAY_NAMES]
        if unknown or not names:
            raise ValueError(
                f"BUSINESS_DAYS={','.join(days)!r}: list at least one day out of "
                + ",".join(DAY_NAMES)
            )
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"BUSINESS_TIME_ZONE={zone!r}: not a known time zone") from None
        return cls(opens, closes, frozenset(DAY_NAMES.index(day) for day in names), tz)

    def add(self, start: datetime, minutes: int) -> datetime:
        """The moment `minutes` of business time after `start` have passed. Windows are
        measured in real time (UTC), so a window spanning a DST change counts its true length."""
        remaining = timedelta(minutes=minutes)
        start_utc = start.astimezone(UTC)
        day = start.astimezone(self.zone).date()
        window = datetime.combine(day, self.closes) - datetime.combine(day, self.opens)
        weeks = remaining / (window * len(self.weekdays))
        for _ in range(7 * (2 * int(weeks) + 3)):  # twice the weeks: DST days may lose time
            if day.weekday() in self.weekdays:
                day_open = datetime.combine(day, self.opens, tzinfo=self.zone).astimezone(UTC)
                day_close = datetime.combine(day, self.closes, tzinfo=self.zone).astimezone(UTC)
                begin = max(start_utc, day_open)
                if begin < day_close:
                    available = day_close - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(self.zone)
                    remaining -= available
            day += timedelta(days=1)
        raise ValueError("BUSINESS_HOURS: no business time found")  # pragma: no cover
