"""The ops models, one module per concern: health results, daily and hourly rollups, outages
and HTTPS states, procedures and their steps, checklist runs, escalation contacts, incidents.
Everything is importable from here."""

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
    HealthHourlyRollup,
    HttpsDomainChange,
    HttpsDomainState,
    HttpsStatus,
    Outage,
    OutageQuerySet,
    count_result,
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
from ops.models.notifications import (
    WAITING_STATES,
    ChannelKind,
    CustomerMessageTemplate,
    DeliveryStatus,
    Notification,
    NotificationChannel,
    NotificationRule,
    NotifyEvent,
    RuleRecipient,
)
from ops.models.procedures import (
    URGENT_CATEGORIES,
    Probe,
    Procedure,
    ProcedureCategory,
    ProcedureStep,
)
from ops.models.rollouts import (
    Rollout,
    RolloutAction,
    RolloutStack,
    RolloutStackStatus,
    RolloutStatus,
    RolloutWave,
    WaveStatus,
)
from ops.models.status_page import MaintenanceWindow, PublicStatus, PublicUpdate

__all__ = [
    "INCIDENT_TRANSITIONS",
    "SETTLED_STATES",
    "URGENT_CATEGORIES",
    "WAITING_STATES",
    "ChannelKind",
    "CheckStatus",
    "ChecklistItem",
    "ChecklistRun",
    "CustomerMessageTemplate",
    "DeliveryStatus",
    "EscalationContact",
    "HealthCheckResult",
    "HealthDailyRollup",
    "HealthHourlyRollup",
    "HttpsDomainChange",
    "HttpsDomainState",
    "HttpsStatus",
    "Incident",
    "IncidentEvent",
    "IncidentEventKind",
    "IncidentQuerySet",
    "IncidentStatus",
    "ItemState",
    "MaintenanceWindow",
    "Notification",
    "NotificationChannel",
    "NotificationRule",
    "NotifyEvent",
    "Outage",
    "OutageQuerySet",
    "Probe",
    "Procedure",
    "ProcedureCategory",
    "ProcedureStep",
    "PublicStatus",
    "PublicUpdate",
    "ResponseState",
    "Rollout",
    "RolloutAction",
    "RolloutStack",
    "RolloutStackStatus",
    "RolloutStatus",
    "RolloutWave",
    "RuleRecipient",
    "RunStatus",
    "Severity",
    "WaveStatus",
    "count_result",
    "duration_text",
    "rebuild_rollups",
    "uptime",
    "uptimes",
]
