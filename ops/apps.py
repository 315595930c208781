"""Operations: health checks, runbook checklists, escalation contacts, incidents."""

from django.apps import AppConfig

from cfadmin.roles import ADMIN, OPERATOR, SUPPORT, VIEWER
from ops.schedules import SCHEDULES


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"
    schedules = SCHEDULES
    # Pages without login served at the site's root (cfadmin/urls.py collects them).
    public_urls = "ops.status_page.urls"
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
            "ops.view_notification",
            "ops.view_notificationchannel",
            "ops.view_notificationrule",
            "ops.view_publicupdate",
            "ops.view_maintenancewindow",
            "ops.view_customermessagetemplate",
            "ops.view_rollout",
            "ops.view_rolloutwave",
            "ops.view_rolloutstack",
        ],
        SUPPORT: [
            "ops.add_checklistrun",
            "ops.change_checklistrun",
            "ops.change_checklistitem",
            "ops.run_healthcheck",
            "ops.add_incident",
            "ops.change_incident",
            # Public updates and customer updates are posted from the incident's page.
            "ops.add_publicupdate",
            "ops.add_maintenancewindow",
            "ops.change_maintenancewindow",
            # "Retry now" on a failed notification.
            "ops.change_notification",
        ],
        OPERATOR: ["ops.run_rollout"],
        ADMIN: [
            "ops.add_procedure",
            "ops.change_procedure",
            "ops.add_procedurestep",
            "ops.change_procedurestep",
            "ops.delete_procedurestep",
            "ops.add_escalationcontact",
            "ops.change_escalationcontact",
            "ops.delete_escalationcontact",
            "ops.add_notificationchannel",
            "ops.change_notificationchannel",
            "ops.delete_notificationchannel",
            "ops.add_notificationrule",
            "ops.change_notificationrule",
            "ops.delete_notificationrule",
            "ops.add_customermessagetemplate",
            "ops.change_customermessagetemplate",
            "ops.delete_customermessagetemplate",
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
        "ops_incident_customer_update": ("ops.change_incident",),
        "ops_maintenancewindow_run_checks": ("ops.change_maintenancewindow",),
        "ops_rollout_new": ("ops.view_rollout",),
        "ops_rollout_act": ("ops.run_rollout",),
    }

    def ready(self) -> None:
        # The stack pages show ops' checklist runs and incidents through stacks' registry
        # (stacks may not import ops).
        from ops import stack_panels

        stack_panels.register()
