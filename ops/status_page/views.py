"""The public status page's views: the HTML page, its JSON and its RSS/Atom feeds. No login,
GET and HEAD only, each response cached STATUS_PAGE_CACHE_SECONDS (ops.status_page.caching).
Rendered without the request's context (no session, no user): the same bytes for everyone."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_safe

from ops.status_page import content
from ops.status_page.caching import cached
from ops.status_page.feeds import AtomStatusFeed, StatusFeed
from ops.status_page.uptime import BAR_LEGEND, UPTIME_DAYS

# On a phone the bars show the last days only (ops/static/ops/status_page.css hides the
# UPTIME_DAYS - NARROW_DAYS older ones).
NARROW_DAYS = 30


@login_not_required
@require_safe
@cached("page")
def status_page(request: HttpRequest) -> HttpResponse:
    page = content.build()
    html = render_to_string(
        "status_page/page.html",
        {
            "page": page,
            "uptime_days": UPTIME_DAYS,
            "bar_legend": BAR_LEGEND,
            "narrow_days": NARROW_DAYS,
            "resolved_days": content.RECENTLY_RESOLVED.days,
            "json_url": reverse("status_page_json"),
            "rss_url": reverse("status_page_rss"),
            "atom_url": reverse("status_page_atom"),
        },
    )
    return HttpResponse(html)


@login_not_required
@require_safe
@cached("json")
def status_json(request: HttpRequest) -> HttpResponse:
    return JsonResponse(content.as_json(content.build()))


_rss = StatusFeed()
_atom = AtomStatusFeed()


@login_not_required
@require_safe
@cached("rss")
def status_rss(request: HttpRequest) -> HttpResponse:
    return _rss(request)


@login_not_required
@require_safe
@cached("atom")
def status_atom(request: HttpRequest) -> HttpResponse:
    return _atom(request)
