"""The status page's RSS and Atom feeds: public updates of public incidents and maintenance
announcements (and cancellations), newest first, bounded. Like the page, only public text: an
incident's public title and its PublicUpdate messages, a window's title and public message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed

from ops.models import MaintenanceWindow, PublicUpdate
from ops.status_page.content import page_url

FEED_ITEMS = 50


@dataclass(frozen=True)
class FeedItem:
    guid: str
    title: str
    description: str
    link: str
    published: datetime


def _window_span(window: MaintenanceWindow) -> str:
    starts, ends = window.starts_at.astimezone(UTC), window.ends_at.astimezone(UTC)
    return f"From {starts:%Y-%m-%d %H:%M} to {ends:%Y-%m-%d %H:%M} UTC."


def update_items(url: str) -> list[FeedItem]:
    """The newest public updates of public incidents (one query)."""
    rows = (
        PublicUpdate.objects.filter(incident__public=True)
        .select_related("incident")
        .only("id", "status", "message", "posted_at", "incident__id", "incident__public_title")
        .order_by("-posted_at", "-id")
    )[:FEED_ITEMS]
    return [
        FeedItem(
            guid=f"{url}#incident-{row.incident.id}-update-{row.id}",
            title=f"{row.incident.public_name}: {row.get_status_display()}",
            description=row.message,
            link=f"{url}#incident-{row.incident.id}",
            published=row.posted_at,
        )
        for row in rows
    ]


def maintenance_items(url: str) -> list[FeedItem]:
    """The newest announced windows (one query): an item when announced, and another when
    cancelled."""
    rows = (
        MaintenanceWindow.objects.filter(announced_at__isnull=False)
        .only(
            "id", "title", "public_message", "starts_at", "ends_at", "announced_at", "cancelled_at"
        )
        .order_by("-announced_at", "-id")
    )[:FEED_ITEMS]
    items = []
    for row in rows:
        span = _window_span(row)
        items.append(
            FeedItem(
                guid=f"{url}#maintenance-{row.id}",
                title=f"Scheduled maintenance: {row.title}",
                description=f"{row.public_message}\n\n{span}".strip(),
                link=f"{url}#maintenance-{row.id}",
                published=row.announced_at,
            )
        )
        if row.cancelled_at is not None:
            items.append(
                FeedItem(
                    guid=f"{url}#maintenance-{row.id}-cancelled",
                    title=f"Maintenance cancelled: {row.title}",
                    description=f"The maintenance planned {span[0].lower()}{span[1:]} "
                    "will not take place.",
                    link=url,
                    published=row.cancelled_at,
                )
            )
    return items


def feed_items() -> list[FeedItem]:
    url = page_url()
    items = update_items(url) + maintenance_items(url)
    return sorted(items, key=lambda item: item.published, reverse=True)[:FEED_ITEMS]


class StatusFeed(Feed):
    """RSS 2.0 of the status page's updates."""

    feed_type = Rss201rev2Feed
    url_name = "status_page_rss"
    description = "Public updates on incidents and scheduled maintenance."

    def title(self) -> str:
        return settings.STATUS_PAGE_TITLE

    def link(self) -> str:
        return page_url()

    def feed_url(self) -> str:
        return settings.CFADMIN_BASE_URL + reverse(self.url_name)

    def items(self) -> list[FeedItem]:
        return feed_items()

    def item_title(self, item: FeedItem) -> str:
        return item.title

    def item_description(self, item: FeedItem) -> str:
        return item.description

    def item_link(self, item: FeedItem) -> str:
        return item.link

    def item_guid(self, item: FeedItem) -> str:
        return item.guid

    item_guid_is_permalink = False

    def item_pubdate(self, item: FeedItem) -> datetime:
        return item.published

    def item_updateddate(self, item: FeedItem) -> datetime:
        return item.published


class AtomStatusFeed(StatusFeed):
    """Atom 1.0 of the same."""

    feed_type = Atom1Feed
    url_name = "status_page_atom"
    subtitle = StatusFeed.description
