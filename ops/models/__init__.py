"""The ops models, one module per concern: health results, daily rollups, outages and HTTPS
states, procedures and their steps, checklist runs, escalation contacts, incidents. Everything
is importable from here."""

# The incident response features' models (issue 15), imported by their module:
from ops.models import (  # noqa: F401  (the modules register their models)
    evidence,
    leaks,
    mass_failure,
    postmortem,
)
from ops.models.checklists import (
    SETTLED_STATES,
    ChecklistItem,
    ChecklistRun,
    ItemState,
    RunStatus,
)
from ops.models.contacts import EscalationContact
from ops.models.durations import duration_text
from ops.models.health import (
    CheckStatus,
    HealthCheckResult,
    HealthDailyRollup,
    HttpsDomainChange,
    HttpsDomainState,
    HttpsStatus,
    Outage,
    OutageQuerySet,
    rebuild_rollups,
    uptime,
    uptimes,
)
from ops.models.incidents import (
    INCIDENT_TRANSITIONS,
    Incident,
    IncidentEvent,
    IncidentEventKind,
    IncidentQuerySet,
    IncidentStatus,
    ResponseState,
    Severity,
)
from ops.models.procedures import (
    URGENT_CATEGORIES,
    Probe,
    Procedure,
    ProcedureCategory,
    ProcedureStep,
)

__all__ = [
    "INCIDENT_TRANSITIONS",
    "SETTLED_STATES",
    "URGENT_CATEGORIES",
    "CheckStatus",
    "ChecklistItem",
    "ChecklistRun",
    "EscalationContact",
    "HealthCheckResult",
    "HealthDailyRollup",
    "HttpsDomainChange",
    "HttpsDomainState",
    "HttpsStatus",
    "Incident",
    "IncidentEvent",
    "IncidentEventKind",
    "IncidentQuerySet",
    "IncidentStatus",
    "ItemState",
    "Outage",
    "OutageQuerySet",
    "Probe",
    "Procedure",
    "ProcedureCategory",
    "ProcedureStep",
    "ResponseState",
    "RunStatus",
    "Severity",
    "duration_text",
    "rebuild_rollups",
    "uptime",
    "uptimes",
]
