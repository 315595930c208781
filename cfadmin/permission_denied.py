"""The 403 page (handler403): in the console's look, it says which role the page needs where that
can be told, the roles the person has, and leads back.

The role is that of the first permission the page needs which the person lacks, lowest first:
each app lists its custom pages' permissions on its AppConfig (`url_permissions`: admin URL
name → permissions, lowest first); the admin's own model pages derive theirs from the page
(list, add, change, delete, history) and the model.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, ResolverMatch, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from cfadmin import roles
from cfadmin.permissions import may

TEMPLATE = "403.html"
SUPERUSER = "superuser"

# A model's admin pages (URL name `<app>_<model>_<page>`) and the actions they need.
PAGE_ACTIONS: dict[str, tuple[str, ...]] = {
    "changelist": ("view",),
    "add": ("add",),
    "change": ("view", "change"),
    "delete": ("delete",),
    "history": ("view",),
}


def _model_admin(match: ResolverMatch) -> Any:
    """The ModelAdmin serving the page, if a model's admin serves it."""
    model_admin = getattr(match.func, "model_admin", None)  # the admin's own model pages
    if model_admin is not None:
        return model_admin
    view: Any = match.func  # a model admin's custom page: a method wrapped by admin_view
    while view is not None:
        if isinstance(getattr(view, "__self__", None), admin.ModelAdmin):
            return view.__self__
        view = getattr(view, "__wrapped__", None)
    return None


def needed_permissions(match: ResolverMatch | None) -> tuple[str, ...]:
    """What the page needs, lowest first; () when that cannot be told."""
    if match is None:
        return ()
    for config in apps.get_app_configs():
        declared = getattr(config, "url_permissions", {})
        if match.url_name in declared:
            return tuple(declared[match.url_name])
    model_admin = _model_admin(match)
    if model_admin is None:
        return ()
    opts = model_admin.opts
    page = (match.url_name or "").removeprefix(f"{opts.app_label}_{opts.model_name}_")
    # A custom page of a model's admin (a dashboard, a report) needs at least to view it.
    actions = PAGE_ACTIONS.get(page, ("view",))
    return tuple(f"{opts.app_label}.{action}_{opts.model_name}" for action in actions)


def needed_role(user: Any, permissions: tuple[str, ...]) -> str:
    """The role of the first of `permissions` the user lacks ("superuser" if no role has it),
    or "" when the user holds them all (the refusal is about this object, not a role)."""
    for permission in permissions:
        if not may(user, permission):
            return roles.role_of_permission(permission) or SUPERUSER
    return ""


def current_roles(user: Any) -> list[str]:
    if not user.is_authenticated:
        return []
    held = roles.role_names(user.groups.values_list("name", flat=True))
    return [SUPERUSER, *held] if user.is_superuser else held


def back_url(request: HttpRequest) -> str:
    """The page the person came from, if it is on this site and not this page; else home."""
    referer = request.META.get("HTTP_REFERER", "")
    same_site = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if same_site and referer.split("?")[0].rstrip("/") != request.build_absolute_uri(
        request.path
    ).rstrip("/"):
        return referer
    return reverse("admin:index")


def _resolved(request: HttpRequest) -> ResolverMatch | None:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match
    try:
        return resolve(request.path_info)
    except Resolver404:
        return None


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler403: every refused page (PermissionDenied) answers with this."""
    role = needed_role(request.user, needed_permissions(_resolved(request)))
    reason = str(exception or "").strip()
    context = {
        **admin.site.each_context(request),
        "title": "You do not have access to this page",
        "needed_role": role,
        "needed_role_summary": roles.ROLE_SUMMARIES.get(role, ""),
        "reason": reason,
        "current_roles": current_roles(request.user),
        "back_url": back_url(request),
        "home_url": reverse("admin:index"),
    }
    return render(request, TEMPLATE, context, status=403)
