"""Where an audit event's target lives in the admin: the change page of the object it is about,
while that object exists and the person reading the trail may open it.

One query for a page of the trail, whatever it mentions (never one per event or per kind), and
none for a kind the reader may not view or the admin does not show.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db.models import CharField, IntegerField, Value
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from cfadmin.models import AuditEvent


def _keys(model: Any, target_ids: Iterable[str]) -> list[Any]:
    """`target_ids` (stored as text) as `model`'s primary keys; ids of another shape dropped
    (the object cannot be there)."""
    keys = []
    for target_id in target_ids:
        try:
            keys.append(model._meta.pk.to_python(target_id))
        except ValidationError:
            continue
    return keys


def _existing(wanted: dict[int, tuple[Any, list[Any]]]) -> set[tuple[int, str]]:
    """(content type id, id as text) of the wanted objects that still exist: one query for all
    the kinds (a UNION), so a page costs the same whatever kinds of object it mentions."""
    probes = [
        model._default_manager.filter(pk__in=keys)
        .annotate(
            cf_kind=Value(type_id, output_field=IntegerField()),
            cf_key=Cast("pk", output_field=CharField()),
        )
        .values_list("cf_kind", "cf_key")
        .order_by()
        for type_id, (model, keys) in wanted.items()
        if keys
    ]
    if not probes:
        return set()
    found = probes[0].union(*probes[1:], all=True) if len(probes) > 1 else probes[0]
    return {(kind, str(key)) for kind, key in found}


def target_urls(
    events: Iterable[AuditEvent], request: HttpRequest, site: AdminSite
) -> dict[int, str]:
    """{event id: change page URL of its target} for the events whose target still exists and
    whose admin `request.user` may view."""
    by_type: dict[int, list[AuditEvent]] = defaultdict(list)
    for event in events:
        if event.target_type_id and event.target_id:
            by_type[event.target_type_id].append(event)
    wanted: dict[int, tuple[Any, list[Any]]] = {}
    for type_id, type_events in by_type.items():  # ContentType's manager caches the types
        model = ContentType.objects.get_for_id(type_id).model_class()
        model_admin = site._registry.get(model) if model is not None else None
        if model_admin is not None and model_admin.has_view_permission(request):
            wanted[type_id] = (model, _keys(model, {event.target_id for event in type_events}))
    existing = _existing(wanted)
    urls: dict[int, str] = {}
    for type_id, (model, _) in wanted.items():
        name = f"{site.name}:{model._meta.app_label}_{model._meta.model_name}_change"
        for event in by_type[type_id]:
            if (type_id, event.target_id) not in existing:
                continue
            try:
                urls[event.pk] = reverse(name, args=[event.target_id])
            except NoReverseMatch:
                continue
    return urls
