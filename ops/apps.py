"""Operations: health checks, runbook checklists, escalation contacts, incidents."""

from django.apps import AppConfig

from cfadmin.roles import ADMIN, SUPPORT, VIEWER
from ops.schedules import SCHEDULES


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"
    schedules = SCHEDULES
    role_permissions = {
        VIEWER: [
            "ops.view_healthcheckresult",
            "ops.view_httpsdomainstate",
            "ops.view_httpsdomainchange",
            "ops.view_outage",
            "ops.view_procedure",
            "ops.view_procedurestep",
            "ops.view_checklistrun",
            "ops.view_checklistitem",
            "ops.view_escalationcontact",
            "ops.view_incident",
            "ops.view_incidentevent",
        ],
        SUPPORT: [
            "ops.add_checklistrun",
            "ops.change_checklistrun",
            "ops.change_checklistitem",
            "ops.run_healthcheck",
            "ops.add_incident",
            "ops.change_incident",
        ],
        ADMIN: [
            "ops.add_procedure",
            "ops.change_procedure",
            "ops.add_procedurestep",
            "ops.change_procedurestep",
            "ops.delete_procedurestep",
            "ops.add_escalationcontact",
            "ops.change_escalationcontact",
            "ops.delete_escalationcontact",
        ],
    }
    # The 403 page names the role a custom page needs (cfadmin.permission_denied).
    url_permissions = {
        "ops_run_healthchecks": ("ops.run_healthcheck",),
        "ops_procedure_start": ("ops.add_checklistrun",),
        "ops_checklistitem_settle": ("ops.change_checklistitem",),
        "ops_checklistrun_probe": ("ops.change_checklistitem",),
        "ops_incident_work": ("ops.change_incident",),
        "ops_incident_postmortem_export": ("ops.view_incident",),
        "ops_incident_recovery_backups": ("ops.view_incident",),
        "ops_incident_leaks_find": ("ops.change_incident",),
        "ops_incident_leaks_rotate": ("ops.change_incident",),
        "ops_incident_evidence_item": ("ops.view_incident",),
        "ops_incident_evidence_download": ("ops.view_incident",),
        "ops_incident_evidence_export": ("ops.view_incident",),
    }

    def ready(self) -> None:
        # The stack pages show ops' checklist runs and incidents through stacks' registry
        # (stacks may not import ops).
        from ops import stack_panels

        stack_panels.register()
