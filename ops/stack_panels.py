"""What ops adds to the stack pages (through stacks.stack_page, as stacks may not import ops):
the stack's checklist runs (the open one first, and the validation run its last deploy
opened) and its incidents (the unresolved ones first), the run an operation opened, and each
stack's open checklist run in lists of stacks. Registered by OpsConfig.ready()."""

from __future__ import annotations

from django.db.models import Case, Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse

from ops import permissions
from ops.checklists import opens_validation_run
from ops.models import ChecklistItem, ChecklistRun, Incident, IncidentStatus, ItemState, RunStatus
from stacks import stack_page
from stacks.choices import OperationStatus
from stacks.models import Operation, Stack
from stacks.stack_page import Link, Panel, RowNote

SHOWN = 5  # rows per panel; "all … →" opens the filtered list


def validation_run_for(operation: Operation, shown: list[ChecklistRun] = ()) -> ChecklistRun | None:
    """The run the hook opened after `operation` succeeded (ChecklistRun.operation): from
    `shown` (the runs a page already has) when it is there, else one query."""
    if operation.status != OperationStatus.SUCCEEDED or not opens_validation_run(operation):
        return None
    for run in shown:
        if run.operation_id == operation.pk:
            return run
    runs = _with_failures(ChecklistRun.objects.filter(operation=operation))
    return runs.select_related("procedure").with_progress().order_by("-id").first()


def _run_url(run: ChecklistRun) -> str:
    return reverse("admin:ops_checklistrun_change", args=[run.pk])


def _with_failures(runs: QuerySet) -> QuerySet:
    failed = (
        ChecklistItem.objects.filter(run=OuterRef("pk"), state=ItemState.FAILED)
        .order_by()
        .values("run")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return runs.annotate(items_failed=Coalesce(Subquery(failed), 0))


def run_note(run: ChecklistRun) -> str:
    """ "open · 3 of 5 steps settled · 1 automatic check failed" or "completed"."""
    if run.is_completed:
        return "completed"
    settled, total = run.progress
    note = f"open · {settled} of {total} steps settled"
    failed = getattr(run, "items_failed", 0)
    if failed:
        note += f" · {failed} automatic check{'s' if failed > 1 else ''} failed"
    return note


def _run_link(run: ChecklistRun) -> Link:
    return Link(
        label=f"{run.procedure.title} #{run.pk}",
        url=_run_url(run),
        note=run_note(run),
        note_class="cf-text-warning" if getattr(run, "items_failed", 0) else "",
    )


def checklist_panel(stack: Stack, request: HttpRequest) -> Panel | None:
    if not permissions.may(request.user, permissions.VIEW_CHECKLISTRUN):
        return None
    open_first = Case(When(status=RunStatus.OPEN, then=Value(0)), default=Value(1))
    runs = list(
        _with_failures(ChecklistRun.objects.filter(stack=stack).with_progress())
        .select_related("procedure")
        .order_by(open_first, "-started_at", "-id")[:SHOWN]
    )
    notice = None
    last = stack_page.latest_operation(stack)
    run = validation_run_for(last, runs) if last is not None else None
    if run is not None:
        notice = Link(
            label=f"{last.get_kind_display()} succeeded — validation run #{run.pk}",
            url=_run_url(run),
            note=run_note(run),
        )
    return Panel(
        key="checklists",
        title="Checklist runs (open first)",
        order=10,
        headline_title="Open checklist run",
        headline=tuple(_run_link(run) for run in runs if not run.is_completed),
        headline_empty="none open",
        rows=tuple(_run_link(run) for run in runs),
        empty="No checklist run for this stack yet.",
        all_link=Link(
            "all checklist runs of this stack →",
            reverse("admin:ops_checklistrun_changelist") + f"?stack__id__exact={stack.pk}",
        ),
        notice=notice,
    )


def incident_panel(stack: Stack, request: HttpRequest) -> Panel | None:
    if not permissions.may(request.user, permissions.VIEW_INCIDENT):
        return None
    unresolved_first = Case(
        When(status=IncidentStatus.RESOLVED, then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    incidents = list(
        stack.incidents.order_by(unresolved_first, "-opened_at", "-id").defer(
            "summary", "resolution"
        )[:SHOWN]
    )

    def link(incident: Incident) -> Link:
        return Link(
            label=str(incident),
            url=reverse("admin:ops_incident_change", args=[incident.pk]),
            note=incident.get_status_display().lower(),
            note_class="" if incident.is_resolved else "cf-text-danger",
        )

    actions = ()
    if permissions.may(request.user, permissions.ADD_INCIDENT) and stack.is_live:
        actions = (
            Link(
                "Open an incident about this stack",
                reverse("admin:ops_incident_add") + f"?stack={stack.pk}",
            ),
        )
    return Panel(
        key="incidents",
        title="Incidents (unresolved first)",
        order=20,
        headline_title="Open incidents",
        headline=tuple(link(incident) for incident in incidents if not incident.is_resolved),
        headline_empty="none",
        rows=tuple(link(incident) for incident in incidents),
        empty="No incident about this stack.",
        all_link=Link(
            "all incidents about this stack →",
            reverse("admin:ops_incident_changelist") + f"?stacks__id__exact={stack.pk}",
        ),
        actions=actions,
    )


def operation_links(operation: Operation, request: HttpRequest) -> list[Link]:
    """The validation run the operation opened, on the operation's page."""
    if not permissions.may(request.user, permissions.VIEW_CHECKLISTRUN):
        return []
    run = validation_run_for(operation)
    if run is None:
        return []
    return [Link(f"Opened checklist run: {run.procedure.title} #{run.pk}", _run_url(run))]


def _annotate_open_run(queryset: QuerySet) -> QuerySet:
    open_runs = ChecklistRun.objects.filter(stack=OuterRef("pk"), status=RunStatus.OPEN)
    return queryset.annotate(
        open_checklist_run_id=Subquery(open_runs.order_by("-started_at", "-id").values("pk")[:1])
    )


def _open_run_link(stack: Stack) -> Link | None:
    run_id = getattr(stack, "open_checklist_run_id", None)
    if run_id is None:
        return None
    return Link(
        f"open checklist run #{run_id}", reverse("admin:ops_checklistrun_change", args=[run_id])
    )


OPEN_RUN_NOTE = RowNote(annotate=_annotate_open_run, link=_open_run_link)


def register() -> None:
    stack_page.register_panel(checklist_panel)
    stack_page.register_panel(incident_panel)
    stack_page.register_operation_link(operation_links)
    stack_page.register_row_note(OPEN_RUN_NOTE)
