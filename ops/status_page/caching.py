"""The status page's responses are kept STATUS_PAGE_CACHE_SECONDS in Django's cache, so a crowd
reloading it during an outage costs the database nothing; posting a public update or announcing
or cancelling a maintenance window forgets them (in this process's cache at once; other
processes' within the TTL)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

KEY_PREFIX = "ops.status_page:"
# The cached views, by name: fixed here so that any process can forget them all.
VIEWS = ("page", "json", "rss", "atom")

View = Callable[[HttpRequest], HttpResponse]


def cached(name: str) -> Callable[[View], View]:
    """Serve the view's response from the cache (one entry per view: the page ignores query
    strings, so none can bust it), with Cache-Control telling proxies and browsers the same."""
    if name not in VIEWS:
        raise ValueError(f"{name!r} is not one of {VIEWS}")
    key = KEY_PREFIX + name

    def decorate(view: View) -> View:
        @wraps(view)
        def serve(request: HttpRequest) -> HttpResponse:
            seconds = settings.STATUS_PAGE_CACHE_SECONDS
            kept = cache.get(key) if seconds > 0 else None
            if kept is None:
                response = view(request)
                kept = (response.status_code, response["Content-Type"], response.content)
                if seconds > 0 and response.status_code == 200:
                    cache.set(key, kept, seconds)
            status, content_type, content = kept
            response = HttpResponse(content, content_type=content_type, status=status)
            patch_cache_control(response, public=True, max_age=max(seconds, 0))
            return response

        return serve

    return decorate


def forget() -> None:
    """Drop the cached responses once the caller's transaction commits (the next request
    builds them from what was committed)."""
    transaction.on_commit(lambda: cache.delete_many([KEY_PREFIX + name for name in VIEWS]))
