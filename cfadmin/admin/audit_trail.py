"""The audit trail's admin page: its filters (actor, target type, tenant, stack), its search
and its links from each line to the object, tenant and stack it names."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.utils.html import format_html

from cfadmin import audit_links, audit_search
from cfadmin.admin.base import LeanListMixin, ReadOnlyAdmin, TextInputFilter
from cfadmin.list_filters import RecentDateFilter, kept_params
from cfadmin.models import AuditEvent
from cfadmin.paginators import EstimatedCountPaginator

# Staff users the actor filter lists; anyone else is typed in its box.
STAFF_ACTORS_SHOWN = 50


class AuditActorFilter(admin.ListFilter):
    """Active staff users as links (their events by user id) and a box for any actor name,
    matched exactly (`cli:root`, `system`, a deleted user): both answered by an index, and the
    choices come from the users table, never from a scan of the trail."""

    title = "actor"
    template = "admin/cfadmin/actor_filter.html"
    parameter_name = "actor"
    user_parameter = "actor__id__exact"
    placeholder = "user name or cli:user"

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.expected_parameters():
            if name in params:
                values = params.pop(name)
                self.used_parameters[name] = values[-1] if isinstance(values, list) else values

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name, self.user_parameter]

    def value_of(self, name: str) -> str:
        return str(self.used_parameters.get(name, "")).strip()

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        user = self.value_of(self.user_parameter)
        if user.isdigit():
            queryset = queryset.filter(actor_id=int(user))
        name = self.value_of(self.parameter_name)
        return queryset.filter(actor_repr=name) if name else queryset

    def choices(self, changelist: Any) -> Any:
        own = self.expected_parameters()
        user, name = self.value_of(self.user_parameter), self.value_of(self.parameter_name)
        yield {
            "selected": not user and not name,
            "query_string": changelist.get_query_string(remove=own),
            "display": "All",
        }
        username = User.USERNAME_FIELD
        staff = (
            User.objects.filter(is_staff=True, is_active=True)
            .order_by(username)
            .values_list("pk", username)[:STAFF_ACTORS_SHOWN]
        )
        for pk, label in staff:
            yield {
                "selected": user == str(pk),
                "query_string": changelist.get_query_string({self.user_parameter: pk}, own),
                "display": label,
            }
        yield {
            "text_box": True,
            "parameter_name": self.parameter_name,
            "value": name,
            "placeholder": self.placeholder,
            "kept_params": kept_params(changelist, set(own)),
        }


class AuditTargetTypeFilter(admin.SimpleListFilter):
    """The kinds of object the trail mentions: one EXISTS probe of the (target type, id) index
    per content type, where Django's "related only" filter reads every event."""

    title = "target type"
    parameter_name = "target_type__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        mentioned = AuditEvent.objects.filter(target_type=OuterRef("pk"))
        types = ContentType.objects.filter(Exists(mentioned)).order_by("app_label", "model")
        return [(str(content_type.pk), str(content_type)) for content_type in types]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = (self.value() or "").strip()
        return queryset.filter(target_type_id=int(value)) if value.isdigit() else queryset


class AuditTenantFilter(TextInputFilter):
    title = "tenant"
    parameter_name = "tenant"
    placeholder = "tenant slug"

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(tenant_slug=self.value().strip()) if self.value() else queryset


class AuditStackFilter(TextInputFilter):
    title = "stack"
    parameter_name = "stack"
    placeholder = "stack name"

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(stack_name=self.value().strip()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(LeanListMixin, ReadOnlyAdmin):
    """Read-only: the trail is append-only, for everyone including superusers.

    Built for a trail of millions of events: every filter is answered by an index and renders
    without reading the trail (no date hierarchy, no "related only" choices, no facet counts),
    the list never loads the changes JSON, and the unfiltered list is counted from PostgreSQL's
    statistics (cfadmin.paginators) with no second, full count.
    """

    list_display = (
        "occurred_at",
        "actor_repr",
        "action",
        "target_column",
        "tenant_column",
        "stack_column",
        "message",
        "address",
    )
    list_filter = (
        "action",
        AuditActorFilter,
        AuditTargetTypeFilter,
        ("occurred_at", RecentDateFilter),
        AuditTenantFilter,
        AuditStackFilter,
    )
    # The search (cfadmin.audit_search) finds events by id, address and the beginning of an
    # actor, target, tenant slug or stack name, through indexes; by any part of those or the
    # message only when nothing begins so. search_fields only switches the search box on.
    search_fields = ("actor_repr",)
    search_help_text = audit_search.HELP_TEXT
    list_defer = ("changes", "user_agent")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def get_search_results(
        self, request: HttpRequest, queryset: Any, search_term: str
    ) -> tuple[Any, bool]:
        if not search_term.strip():
            return queryset, False
        return queryset.search(search_term), False  # no join: never duplicates

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> Any:
        changelist = super().get_changelist(request, **kwargs)
        site = self.admin_site

        class LinkedChangeList(changelist):
            """Each event of the page learns its target's URL (cfadmin.audit_links) and the
            trail's URLs filtered to its tenant and to its stack."""

            def get_results(self, request: HttpRequest) -> None:
                super().get_results(request)
                events = list(self.result_list)
                targets = audit_links.target_urls(events, request, site)
                for event in events:
                    event.target_url = targets.get(event.pk, "")
                    event.tenant_filter_url = self.get_query_string(
                        {AuditTenantFilter.parameter_name: event.tenant_slug}, ["p"]
                    )
                    event.stack_filter_url = self.get_query_string(
                        {AuditStackFilter.parameter_name: event.stack_name}, ["p"]
                    )

        return LinkedChangeList

    @admin.display(description="target", ordering="target_repr")
    def target_column(self, event: AuditEvent) -> str:
        url = getattr(event, "target_url", "")  # "" once the object is gone
        if not url:
            return event.target_repr
        return format_html('<a href="{}">{}</a>', url, event.target_repr)

    @admin.display(description="tenant", ordering="tenant_slug")
    def tenant_column(self, event: AuditEvent) -> str:
        return _filter_link(getattr(event, "tenant_filter_url", ""), event.tenant_slug, "tenant")

    @admin.display(description="stack", ordering="stack_name")
    def stack_column(self, event: AuditEvent) -> str:
        return _filter_link(getattr(event, "stack_filter_url", ""), event.stack_name, "stack")


def _filter_link(url: str, value: str, kind: str) -> str:
    """The trail filtered to this value (empty values stay empty)."""
    if not value or not url:
        return value
    return format_html('<a href="{}" title="Only events of this {}">{}</a>', url, kind, value)
