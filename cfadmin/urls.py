from django.apps import apps
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from cfadmin.global_search import search_view
from cfadmin.security import mfa_views

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Before the admin's own URLs, which would otherwise answer 404 for them.
    path("admin/mfa/enrol/", mfa_views.enrol, name="cfadmin_mfa_enrol"),
    path("admin/mfa/verify/", mfa_views.verify, name="cfadmin_mfa_verify"),
    path("admin/search/", admin.site.admin_view(search_view), name="cfadmin_global_search"),
    path("admin/", admin.site.urls),
    # Each app's public pages (no login), e.g. ops' status page: declared on its AppConfig.
    *(
        path("", include(config.public_urls))
        for config in apps.get_app_configs()
        if getattr(config, "public_urls", "")
    ),
]

handler403 = "cfadmin.permission_denied.handler403"
