"""The admin benchmark's yardstick: a second AdminSite ("bare", at /bare/) with a plain
ModelAdmin for every model the real admin registers, showing the same list columns as plain
fields — no custom methods, filters, search, inlines or extra queries — and the same ordering
and page size. A page of the real admin is compared with the bare list of the same rows.

Also the benchmark's urlconf (bench/settings_admin.py): cfadmin's URLs plus the bare site.
Never mounted by cfadmin itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import path

from cfadmin.urls import urlpatterns as cfadmin_urlpatterns
from stacks.choices import StackStatus
from stacks.models import Stack

# Method columns named after the field they show (status_display, tenant_link, status_badge).
SUFFIXES = ("_display", "_link", "_badge", "_list", "_repr")


def _plain_fields(model: type[models.Model]) -> set[str]:
    return {
        field.name
        for field in model._meta.get_fields()
        if getattr(field, "concrete", False) and not field.many_to_many
    }


def plain_columns(model_admin: admin.ModelAdmin) -> list[str]:
    """The real list's columns as the model's own fields: a method column becomes the field it
    sorts by (or is named after); one with no such field is left out; `__str__` becomes the
    primary key (a model's str() may follow relations the bare list should not)."""
    model = model_admin.model
    fields = _plain_fields(model)
    columns: list[str] = []
    for entry in model_admin.list_display:
        name = entry if isinstance(entry, str) else getattr(entry, "__name__", "")
        candidate = ""
        if name in fields:
            candidate = name
        elif name == "__str__":
            candidate = model._meta.pk.name
        else:
            method = getattr(model_admin, name, None) or getattr(model, name, None)
            order = getattr(method, "admin_order_field", None)
            if isinstance(order, str) and order.lstrip("-").split("__")[0] in fields:
                candidate = order.lstrip("-").split("__")[0]
            else:
                for suffix in SUFFIXES:
                    if name.endswith(suffix) and name.removesuffix(suffix) in fields:
                        candidate = name.removesuffix(suffix)
        if candidate and candidate not in columns:
            columns.append(candidate)
    return columns or [model._meta.pk.name]


def _live_stacks(queryset: QuerySet) -> QuerySet:
    return queryset.exclude(status=StackStatus.DELETED)


# The rows a real list shows before any filter is chosen, where that is not every row: the stack
# list hides deleted stacks (stacks.admin.filters.StackStatusFilter).
DEFAULT_ROWS: dict[type[models.Model], Callable[[QuerySet], QuerySet]] = {Stack: _live_stacks}


def bare_admin_for(model_admin: admin.ModelAdmin) -> type[admin.ModelAdmin]:
    model = model_admin.model
    default_rows = DEFAULT_ROWS.get(model)

    def get_queryset(self: admin.ModelAdmin, request: HttpRequest) -> QuerySet:
        queryset = admin.ModelAdmin.get_queryset(self, request)
        return default_rows(queryset) if default_rows else queryset

    relations = [
        field.name
        for field in model._meta.get_fields()
        if getattr(field, "concrete", False)
        and (field.many_to_one or field.many_to_many)
        and getattr(field, "editable", True)
    ]
    columns = plain_columns(model_admin)
    related_columns = [
        name for name in columns if getattr(model._meta.get_field(name), "many_to_one", False)
    ]
    # The rows' related objects as the real list loads them (its list_select_related, and the
    # relations among the columns): str() of each row is rendered too (the checkbox's label).
    select = model_admin.list_select_related
    select = [*select, *related_columns] if isinstance(select, list | tuple) else related_columns
    return type(
        f"Bare{model.__name__}Admin",
        (admin.ModelAdmin,),
        {
            "list_display": columns,
            "list_select_related": list(dict.fromkeys(select)) or False,
            "list_per_page": model_admin.list_per_page,
            "ordering": model_admin.ordering,
            "show_full_result_count": model_admin.show_full_result_count,
            # Related objects as ids: a <select> of 1,000 tenants is not what is measured.
            "raw_id_fields": relations,
            "get_queryset": get_queryset,
        },
    )


def build_site(source: admin.AdminSite = admin.site) -> admin.AdminSite:
    site = admin.AdminSite(name="bare")
    for model, model_admin in source._registry.items():
        site.register(model, bare_admin_for(model_admin))
    return site


def bare_url(model: type[models.Model], view: str = "changelist", *args: Any) -> str:
    from django.urls import reverse

    return reverse(f"bare:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


bare_site = build_site()
urlpatterns = [path("bare/", bare_site.urls), *cfadmin_urlpatterns]
