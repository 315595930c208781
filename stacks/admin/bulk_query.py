"""The stack list's "Apply to all N matching…" (issue 17, bulk by query): the list's current
filters and search (template, template version, tenant, ring, status, containment, search) go
to a confirmation page showing how many stacks match and the filter in words; confirming
queues one job requesting the chosen operation (only kinds the person may request) on all of
them as background operations (stacks.services.bulk), and returns to the list at once. The
filtering is the list's own (its ChangeList), so the page matches exactly what the list shows."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ALL_VAR, ORDER_VAR, PAGE_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from cfadmin.models import AuditAction
from stacks import permissions
from stacks.choices import OPERATION_PERMISSIONS, OperationKind
from stacks.services.bulk import BULK_KINDS, BulkRefused, bulk_label, queue_for_query
from tenants.models import RolloutRing

# Parameters of the list's address that are not filters: page, sort, "show all", facets.
NOT_FILTERS = (PAGE_VAR, ORDER_VAR, ALL_VAR, "_facets", "_changelist_filters")
ALL_LABEL = "All"


class RolloutRingFilter(admin.SimpleListFilter):
    """By the tenant's rollout ring (canary / standard / last)."""

    title = "rollout ring"
    parameter_name = "ring"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(RolloutRing.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in RolloutRing.values:
            return queryset.filter(tenant__rollout_ring=self.value())
        return queryset


def filter_params(query: QueryDict) -> QueryDict:
    """The list address's filters and search only."""
    kept = query.copy()
    for name in NOT_FILTERS:
        kept.pop(name, None)
    return kept


def describe(changelist: Any) -> list[str]:
    """The filter in words: "template name: telegram-bot", "template version: outdated"…"""
    words = []
    for spec in changelist.filter_specs:
        value = spec.value() if isinstance(spec, admin.SimpleListFilter) else None
        if value:
            labels = {str(key): label for key, label in spec.lookup_choices}
            words.append(f"{spec.title}: {labels.get(str(value), value)}")
            continue
        selected = [c["display"] for c in spec.choices(changelist) if c.get("selected")]
        if selected and str(selected[0]) not in (ALL_LABEL, ""):
            words.append(f"{spec.title}: {selected[0]}")
    if changelist.query:
        words.append(f"search: “{changelist.query}”")
    return words


class StackBulkQueryMixin:
    """Mixed into StackAdmin (a ModelAdmin)."""

    def bulk_query_urls(self) -> list:
        view = self.admin_site.admin_view(self.bulk_query_view)
        return [path("bulk/", view, name="stacks_stack_bulk_query")]

    def bulk_kinds(self, request: HttpRequest) -> list[OperationKind]:
        """The bulk operations this person may request."""
        return [k for k in BULK_KINDS if permissions.may(request.user, OPERATION_PERMISSIONS[k])]

    def bulk_query_context(self, request: HttpRequest) -> dict[str, str]:
        """For the list's object tools: the link carrying its current filters."""
        if not self.bulk_kinds(request):
            return {}
        query = filter_params(request.GET).urlencode()
        return {"bulk_query_url": reverse("admin:stacks_stack_bulk_query") + f"?{query}"}

    def _bulk_changelist(self, request: HttpRequest, query: QueryDict) -> Any:
        """The list's ChangeList for `query` (its filters applied as on the list)."""
        listing = copy.copy(request)
        listing.GET = query
        return self.get_changelist_instance(listing), listing

    def bulk_query_view(self, request: HttpRequest) -> HttpResponse:
        kinds = self.bulk_kinds(request)
        if not kinds:
            raise PermissionDenied
        raw = request.POST.get("query", "") if request.method == "POST" else request.GET.urlencode()
        query = filter_params(QueryDict(raw))
        back = reverse("admin:stacks_stack_changelist") + (f"?{query.urlencode()}" if query else "")
        try:
            changelist, listing = self._bulk_changelist(request, query)
        except IncorrectLookupParameters:
            self.message_user(request, "The list's filters are not valid.", messages.ERROR)
            return HttpResponseRedirect(back)
        matching = changelist.get_queryset(listing)
        words = describe(changelist)
        description = "; ".join(words) or "no filter (every stack)"
        if request.method == "POST" and request.POST.get("post") == "yes":
            kind = request.POST.get("kind", "")
            if kind not in kinds:
                self.message_user(
                    request,
                    "Operation: choose one of " + ", ".join(k.label.lower() for k in kinds) + ".",
                    messages.ERROR,
                )
            elif self._bulk_request(request, matching, OperationKind(kind), description, query):
                return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": "Apply an operation to every matching stack",
            "opts": self.opts,
            "count": matching.count(),
            "filter_words": words,
            "kinds": kinds,
            "chosen": request.POST.get("kind", ""),
            "query": query.urlencode(),
            "back_url": back,
        }
        return TemplateResponse(request, "admin/stacks/stack/bulk_query.html", context)

    def _bulk_request(
        self,
        request: HttpRequest,
        matching: QuerySet,
        kind: OperationKind,
        description: str,
        query: QueryDict,
    ) -> bool:
        """Queue the job (stacks.services.bulk); False, with the reason shown, when refused."""
        filters = {name: query.get(name) for name in query}
        try:
            count = queue_for_query(
                matching,
                kind,
                actor=request.user,
                description=description,
                filters=filters,
                shown_count=shown_count(request.POST.get("count", "")),
            )
        except BulkRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
            return False
        operations = reverse("admin:stacks_operation_changelist")
        watch = urlencode({"background__exact": "1", "kind__exact": kind.value})
        self.message_user(
            request,
            format_html(
                "{} queued; the operations appear as they are requested: "
                '<a href="{}?{}">Operations, background {}</a>. A stack that cannot take it '
                "is skipped; the counts go to the "
                '<a href="{}?action__exact={}">audit trail</a> when all are requested.',
                bulk_label(kind, count),
                operations,
                watch,
                kind.label.lower(),
                reverse("admin:cfadmin_auditevent_changelist"),
                AuditAction.OPERATION_RESULT.value,
            ),
            messages.SUCCESS,
        )
        return True


def shown_count(raw: str) -> int | None:
    """The count the confirmation page showed (its hidden field), if it sent a number."""
    return int(raw) if raw.isdigit() else None
