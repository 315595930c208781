"""Sidebar filters for lists of big tables: each filters through an index and renders without
reading the table (Django's date hierarchy and "related only" filters scan it to find choices)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

# The links of a RecentDateFilter: the value of `<field>__within` → how far back.
RECENT_PERIODS: dict[str, tuple[str, timedelta]] = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}


def kept_params(changelist: Any, drop: set[str]) -> list[tuple[str, str]]:
    """The list's current filters and search as (name, value) pairs, except `drop`: hidden
    inputs for a filter's own GET form, so submitting it keeps the rest of the selection."""
    kept = []
    for key, values in changelist.get_filters_params().items():
        if key in drop:
            continue
        for value in values if isinstance(values, list) else [values]:
            kept.append((key, value))
    if changelist.query:
        kept.append(("q", changelist.query))
    return kept


def parse_moment(text: str, *, end_of_day: bool = False) -> datetime | None:
    """An ISO date or date-time typed in the sidebar, as an aware datetime (a date is local
    midnight, or the next midnight for an inclusive end); None when it is neither."""
    text = text.strip()
    try:
        day = parse_date(text)  # first: parse_datetime reads a bare date as its midnight
        if day is not None:
            moment = datetime.combine(day + timedelta(days=end_of_day), time())
        else:
            moment = parse_datetime(text)
    except ValueError:  # well-formed but impossible, such as 2026-02-30
        return None
    if moment is None:
        return None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class RecentDateFilter(admin.FieldListFilter):
    """Last 24 hours / 7 days / 30 days, or a from-to range of dates: `<field>__gte` (from) and
    `<field>__lte` (to, inclusive) are ordinary bounds an index on the field answers."""

    template = "admin/cfadmin/recent_date_filter.html"

    def __init__(
        self,
        field: Any,
        request: HttpRequest,
        params: dict[str, Any],
        model: Any,
        model_admin: Any,
        field_path: str,
    ) -> None:
        self.within_param = f"{field_path}__within"
        self.since_param = f"{field_path}__gte"
        self.until_param = f"{field_path}__lte"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = getattr(field, "verbose_name", field_path)

    def expected_parameters(self) -> list[str]:
        return [self.within_param, self.since_param, self.until_param]

    def value(self, param: str) -> str:
        values = self.used_parameters.get(param) or [""]
        return str(values[-1] if isinstance(values, list) else values).strip()

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """(from, until) of the selection; an unreadable value counts as not given."""
        period = RECENT_PERIODS.get(self.value(self.within_param))
        if period is not None:
            return timezone.now() - period[1], None
        return (
            parse_moment(self.value(self.since_param)),
            parse_moment(self.value(self.until_param), end_of_day=True),
        )

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        since, until = self.bounds()
        if since is not None:
            queryset = queryset.filter(**{f"{self.field_path}__gte": since})
        if until is not None:
            queryset = queryset.filter(**{f"{self.field_path}__lt": until})
        return queryset

    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:
        own = self.expected_parameters()
        within = self.value(self.within_param)
        ranged = bool(self.value(self.since_param) or self.value(self.until_param))
        yield {
            "selected": not within and not ranged,
            "query_string": changelist.get_query_string(remove=own),
            "display": "Any time",
        }
        for key, (label, _) in RECENT_PERIODS.items():
            yield {
                "selected": within == key,
                "query_string": changelist.get_query_string({self.within_param: key}, own),
                "display": label,
            }
        # The range form: the template reads this last entry.
        yield {
            "range": True,
            "selected": ranged and not within,
            "since_param": self.since_param,
            "until_param": self.until_param,
            "since": self.value(self.since_param),
            "until": self.value(self.until_param),
            "invalid": [
                text
                for text, end in (
                    (self.value(self.since_param), False),
                    (self.value(self.until_param), True),
                )
                if text and parse_moment(text, end_of_day=end) is None
            ],
            "kept_params": kept_params(changelist, set(own)),
        }
