"""Incidents in the admin: the list, the add/edit form, and the page's action buttons (looked
up in ops.incident_actions.ACTIONS, which says what each does and the permissions it needs)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, Prefetch, Value, When, prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from cfadmin.admin import (
    AuditedModelAdmin,
    LeanListMixin,
    PrefilledAutocompleteSelectMultiple,
    prefill_autocomplete,
)
from ops import incident_actions, incidents, response
from ops.admin.badges import response_badge, severity_badge
from ops.models import EscalationContact, Incident, IncidentStatus, Outage
from ops.permissions import ADD_CHECKLISTRUN, may
from stacks.models import Stack
from tenants.models import Tenant

INCIDENT_FORM_FIELDS = ("title", "severity", "escalation", "owner", "summary")
# What the list's "affects" column names before "…", and what an incident's page shows of its
# unbounded children: the latest timeline events (all on request) and checklist runs (the rest
# in the runs list, filtered to the incident).
AFFECTED_SHOWN = 5
TIMELINE_SHOWN = 50
RUNS_SHOWN = 20


@admin.register(Incident)
class IncidentAdmin(LeanListMixin, AuditedModelAdmin):
    list_display = (
        "__str__",
        "severity_display",
        "status",
        "escalation",
        "response_display",
        "opened_at",
        "duration_display",
        "owner",
        "affected",
    )
    list_display_links = ("__str__",)
    list_filter = ("status", "severity", "escalation", "opened_at")
    # IncidentQuerySet.search finds incidents through the link tables' indexes (no join, no
    # DISTINCT); search_fields only switches the search box on.
    search_fields = ("title",)
    search_help_text = (
        "Incident id, a word of the title, or a linked stack (id, uuid, the beginning of a "
        "stack name, tenant slug or domain) or tenant slug's beginning; when nothing is found "
        "so, any part of the summary or of a linked stack's name or domain."
    )
    autocomplete_fields = ("tenants", "stacks", "outages")
    fields = (*INCIDENT_FORM_FIELDS, "tenants", "stacks", "outages")
    list_select_related = ("escalation", "owner")
    list_defer = ("summary", "resolution", "escalation__notes")
    date_hierarchy = "opened_at"

    # Unresolved incidents first, newest first within each group.
    ordering = (
        Case(When(status=IncidentStatus.RESOLVED, then=Value(1)), default=Value(0)).asc(),
        "-opened_at",
        "-id",
    )

    def get_list_queryset(self, queryset: Any) -> Any:
        # The first few links of each row, one query each for all rows: an incident of a mass
        # outage may link thousands of stacks, and the list names only the first ones.
        stacks = Stack.objects.select_related("tenant").only("stack_name", "tenant__slug")
        return (
            super()
            .get_list_queryset(queryset)
            .prefetch_related(
                Prefetch(
                    "stacks", queryset=stacks[: AFFECTED_SHOWN + 1], to_attr="affected_stacks"
                ),
                Prefetch(
                    "tenants",
                    queryset=Tenant.objects.only("slug")[: AFFECTED_SHOWN + 1],
                    to_attr="affected_tenants",
                ),
            )
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an incident is a record of what happened

    @admin.display(description="severity", ordering="severity")
    def severity_display(self, obj: Incident) -> str:
        return severity_badge(obj)

    @admin.display(description="response", ordering="response_due_at")
    def response_display(self, obj: Incident) -> str:
        return response_badge(obj)

    @admin.display(description="duration")
    def duration_display(self, obj: Incident) -> str:
        return obj.duration_text + ("" if obj.resolved_at else " (ongoing)")

    @admin.display(description="affects")
    def affected(self, obj: Incident) -> str:
        """Its first stacks (or, when none, tenants), each a link to its page."""
        links = affected_links(obj.affected_stacks, []) or affected_links([], obj.affected_tenants)
        shown = links[:AFFECTED_SHOWN]
        more = " …" if len(links) > len(shown) else ""
        return format_html("{}{}", format_html_join(", ", '<a href="{}">{}</a>', shown), more)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related(*self.list_select_related)

    def get_search_results(
        self, request: HttpRequest, queryset: Any, search_term: str
    ) -> tuple[Any, bool]:
        if not search_term.strip():
            return queryset, False
        return queryset.search(search_term), False  # no join: never duplicates

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        # ModelAdmin.get_object, reading with it whether each response feature has anything
        # on the incident (ops.response.with_presence), so its panels ask nothing they need not.
        queryset = response.with_presence(self.get_queryset(request))
        field = Incident._meta.pk if from_field is None else Incident._meta.get_field(from_field)
        try:
            incident = queryset.get(**{field.name: field.to_python(object_id)})
        except (Incident.DoesNotExist, ValidationError, ValueError):
            incident = None
        if incident is not None:
            # The form's initial links and their labels (prefill_autocomplete): one query each.
            prefetch_related_objects(
                [incident],
                Prefetch("stacks", queryset=Stack.objects.select_related("tenant")),
                "tenants",
                "outages",
            )
        return incident

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in self.autocomplete_fields:
            kwargs["widget"] = PrefilledAutocompleteSelectMultiple(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        if db_field.name == "stacks":
            # A stack's name includes its tenant's: one query for every linked stack's label.
            kwargs["queryset"] = Stack.objects.select_related("tenant")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "owner":
            kwargs["queryset"] = incident_actions.owner_choices()  # support and up
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial: dict[str, Any] = {"owner": request.user.pk}
        outage_id = request.GET.get("outage", "")
        if outage_id.isdigit():
            outage = Outage.objects.filter(pk=outage_id).first()
            if outage is not None:
                initial.update(incidents.initial_from_outage(outage))
        stack_id = request.GET.get("stack", "")
        if stack_id.isdigit():
            stack = Stack.objects.filter(pk=stack_id).select_related("tenant").first()
            if stack is not None:
                initial.update(stacks=str(stack.pk), tenants=str(stack.tenant_id))
        tenant_id = request.GET.get("tenant", "")
        if tenant_id.isdigit():
            initial["tenants"] = tenant_id
        initial.update(super().get_changeform_initial_data(request))
        initial.pop("outage", None)
        initial.pop("stack", None)
        initial.pop("tenant", None)
        return initial

    def save_model(self, request: HttpRequest, obj: Incident, form: Any, change: bool) -> None:
        """Nothing yet: the incident is saved with its links in `save_related`, in one call."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        incident = form.instance

        def save_links() -> None:
            super(IncidentAdmin, self).save_related(request, form, formsets, change)

        if not change:
            incidents.open_incident(incident, actor=request.user, save_links=save_links)
            return
        previous = incidents.edit_incident(
            incident,
            actor=request.user,
            fields=[f for f in INCIDENT_FORM_FIELDS if f in form.fields],
            save_links=save_links,
            escalation_changed="escalation" in form.changed_data,
        )
        incident._audit_before = self.audit_snapshot(previous)  # AuditedModelAdmin.log_change

    def response_add(
        self, request: HttpRequest, obj: Incident, post_url_continue: Any = None
    ) -> Any:
        # Straight to the incident's page: its timeline and actions are where work happens.
        if "_addanother" not in request.POST and "_popup" not in request.POST:
            self.message_user(request, f"Opened incident {obj}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:ops_incident_change", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/<str:action>/do/",
                view(require_POST(self.work_view)),
                name="ops_incident_work",
            ),
            *response.urls(self),
            *super().get_urls(),
        ]

    def work_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """The buttons on an incident's page: look the action up, check, call, report."""
        if not may(request.user, incident_actions.WORK_INCIDENT):
            raise PermissionDenied
        found = incident_actions.find_action(action)
        if found is None or not object_id.isdigit():
            raise Http404
        incident = get_object_or_404(Incident, pk=object_id)
        if not all(may(request.user, perm) for perm in found.permissions):
            raise PermissionDenied
        try:
            outcome = found.run(incident, request.POST, actor=request.user)
        except ValidationError as error:
            self.message_user(
                request, "Nothing changed: " + " ".join(error.messages), messages.ERROR
            )
        else:
            if outcome.redirect:
                if outcome.message:
                    self.message_user(request, outcome.message, messages.SUCCESS)
                return HttpResponseRedirect(outcome.redirect)
            if outcome.run is not None:
                return HttpResponseRedirect(
                    reverse("admin:ops_checklistrun_change", args=[outcome.run.pk])
                )
            self.message_user(request, outcome.message, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:ops_incident_change", args=[incident.pk]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if request.htmx and request.method == "GET":
            # A live region's poll: only the read-only parts (status, timeline, runs), never the
            # forms, whatever the person is typing in them; no messages consumed.
            incident = (
                response.with_presence(self.get_queryset(request)).filter(pk=object_id).first()
                if object_id.isdigit()
                else None
            )
            if incident is None or not self.has_view_permission(request, incident):
                raise Http404
            context = {"incident": incident, **self.live_context(request, incident)}
            return TemplateResponse(request, "admin/ops/incident/live.html", context)
        return super().change_view(request, object_id, form_url, extra_context)

    def live_context(self, request: HttpRequest, incident: Incident) -> dict[str, Any]:
        """What the page's live regions show: status, response, links, timeline, runs."""
        response.preload(incident)  # whether each response feature has anything, one query
        # The change page has every link loaded already (get_object, for the form); a poll
        # reads the first few.
        loaded = getattr(incident, "_prefetched_objects_cache", {})
        stacks = (
            incident.stacks.all()
            if "stacks" in loaded
            else incident.stacks.select_related("tenant")
        )
        stacks = list(stacks[: AFFECTED_SHOWN + 1])
        tenants = list(incident.tenants.all()[: AFFECTED_SHOWN + 1])
        # The summary polls with the status the page's forms were made for: when it moved on
        # (someone else acknowledged), it says so and offers a reload for the right actions.
        seen = (request.htmx and request.GET.get("seen")) or incident.status
        return {
            "summary_url": reverse("admin:ops_incident_change", args=[incident.pk])
            + "?"
            + urlencode({"seen": seen}),
            "status_moved_on": seen != incident.status,
            "severity": severity_badge(incident),
            "response": response_badge(incident),
            "affected_stacks": affected_links(stacks[:AFFECTED_SHOWN], []),
            "affected_tenants": affected_links([], tenants[:AFFECTED_SHOWN]),
            "affected_cut": len(stacks) > AFFECTED_SHOWN or len(tenants) > AFFECTED_SHOWN,
            "response_panels": response.panels(incident, request),
            **self.bounded_children(request, incident),
        }

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any
    ) -> Any:
        incident = context.get("original")
        if incident is not None:
            for name in self.autocomplete_fields:
                prefill_autocomplete(context["adminform"].form, name, getattr(incident, name).all())
            can_work = may(request.user, incident_actions.WORK_INCIDENT)
            can_start_runs = can_work and may(request.user, ADD_CHECKLISTRUN)
            context.update(
                incident=incident,
                **self.live_context(request, incident),
                can_work=can_work,
                action_groups=incident_actions.action_groups(
                    incident, can_start_runs=can_start_runs, user=request.user
                ),
                transitions=[
                    (status, label)
                    for status, label in incident_actions.STATUS_BUTTONS.items()
                    if incident.can_become(status)
                ],
                resolved_status=IncidentStatus.RESOLVED,
                contacts=self.share_contacts(context["adminform"].form),
                procedures=incident_actions.procedures_offered(),
            )
        return super().render_change_form(request, context, *args, **kwargs)

    @staticmethod
    def share_contacts(form: Any) -> list[EscalationContact]:
        """The escalation contacts, read once for the escalate form and the details form's
        issue type (whose select would read them again)."""
        contacts = list(EscalationContact.objects.all())
        field = form.fields.get("escalation")
        if field is not None:
            choices = [("", field.empty_label)]
            choices += [(contact.pk, field.label_from_instance(contact)) for contact in contacts]
            field.choices = choices
            inner = getattr(field.widget, "widget", None)  # the admin's related-field wrapper
            if inner is not None:
                inner.choices = choices
        return contacts

    def bounded_children(self, request: HttpRequest, incident: Incident) -> dict[str, Any]:
        """The page's timeline and runs, newest N (one query each, one row more tells whether
        there are more); `?timeline=all` shows the whole timeline."""
        whole_timeline = request.GET.get("timeline") == "all"
        newest = incident.events.order_by("-at", "-id")
        events = list(newest if whole_timeline else newest[: TIMELINE_SHOWN + 1])
        runs = list(
            incident.checklist_runs.select_related("procedure")
            .with_progress()
            .order_by("-started_at", "-id")[: RUNS_SHOWN + 1]
        )
        return {
            "events": list(reversed(events[:TIMELINE_SHOWN] if not whole_timeline else events)),
            "timeline_cut": not whole_timeline and len(events) > TIMELINE_SHOWN,
            "timeline_shown": TIMELINE_SHOWN,
            "runs": runs[:RUNS_SHOWN],
            "runs_cut": len(runs) > RUNS_SHOWN,
            "runs_url": reverse("admin:ops_checklistrun_changelist")
            + f"?incident__id__exact={incident.pk}",
        }


def affected_links(stacks: Any, tenants: Any) -> list[tuple[str, str]]:
    """(url, label) of each stack's, then each tenant's, admin page."""
    return [
        *((reverse("admin:stacks_stack_change", args=[stack.pk]), str(stack)) for stack in stacks),
        *(
            (reverse("admin:tenants_tenant_change", args=[tenant.pk]), tenant.slug)
            for tenant in tenants
        ),
    ]
