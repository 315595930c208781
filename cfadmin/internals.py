"""Django Q's admin pages (scheduled, queued, successful and failed tasks) as the console's
"Internals": visible to the admin role only, listed last on the admin index and in the nav.

Django Q registers its admins when `django_q.admin` is imported; `register()` replaces them
with the same pages behind the admin role (cfadmin/admin.py calls it once).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django_q import admin as django_q_admin
from django_q.models import Failure, OrmQ, Schedule, Success

from cfadmin.roles import ADMIN, holds_role

APP_LABEL = "django_q"
SECTION_NAME = "Internals"


class InternalsOnlyMixin:
    """The admin role reads these pages; only a superuser changes them (as before). Django Q's
    "resubmit" action is gone: it queues around cfadmin.jobs.enqueue."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return holds_role(request.user, ADMIN)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return holds_role(request.user, ADMIN)

    def get_actions(self, request: HttpRequest) -> dict:
        return {}


class InternalScheduleAdmin(InternalsOnlyMixin, django_q_admin.ScheduleAdmin):
    pass


class InternalSuccessAdmin(InternalsOnlyMixin, django_q_admin.TaskAdmin):
    pass


class InternalFailureAdmin(InternalsOnlyMixin, django_q_admin.FailAdmin):
    pass


class InternalQueueAdmin(InternalsOnlyMixin, django_q_admin.QueueAdmin):
    pass


INTERNAL_ADMINS = (
    (Schedule, InternalScheduleAdmin),
    (Success, InternalSuccessAdmin),
    (Failure, InternalFailureAdmin),
    (OrmQ, InternalQueueAdmin),
)


def register(site: admin.AdminSite) -> None:
    """Replace Django Q's admins on `site` with the admin-role-only ones (a model Django Q left
    unregistered, the ORM queue without the ORM broker, stays unregistered)."""
    for model, model_admin in INTERNAL_ADMINS:
        if site.is_registered(model):
            site.unregister(model)
            site.register(model, model_admin)


def internals_last(app_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The admin's app list with Django Q's app named "Internals" and moved to the end."""
    internals = [app for app in app_list if app["app_label"] == APP_LABEL]
    for app in internals:
        app["name"] = SECTION_NAME
    return [app for app in app_list if app["app_label"] != APP_LABEL] + internals


def list_internals_last(site: Any) -> None:
    """Every app list `site` builds (index, app pages, nav sidebar) ends with Internals. The
    settings install Django's default site; its method is wrapped rather than the site swapped."""
    build = site.get_app_list

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[dict]:
        return internals_last(build(request, app_label))

    site.get_app_list = get_app_list
