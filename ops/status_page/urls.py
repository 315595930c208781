"""The status page's public URLs (collected by cfadmin/urls.py from OpsConfig.public_urls),
under settings.STATUS_PAGE_PATH ("status/" by default)."""

from django.conf import settings
from django.urls import path

from ops.status_page import views

PREFIX = settings.STATUS_PAGE_PATH

urlpatterns = [
    path(PREFIX, views.status_page, name="status_page"),
    path(f"{PREFIX}index.json", views.status_json, name="status_page_json"),
    path(f"{PREFIX}feed.rss", views.status_rss, name="status_page_rss"),
    path(f"{PREFIX}feed.atom", views.status_atom, name="status_page_atom"),
]
