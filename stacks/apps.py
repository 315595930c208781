"""Stacks: templates, provisioning against Coolify and PocketBase, reconcile."""

from django.apps import AppConfig

from cfadmin.roles import ADMIN, OPERATOR, SUPPORT, VIEWER
from stacks.schedules import SCHEDULES


class StacksConfig(AppConfig):
    name = "stacks"
    # The admin's section and breadcrumbs ("Agent stacks > Stacks", not "Stacks > Stacks").
    verbose_name = "Agent stacks"
    default_auto_field = "django.db.models.BigAutoField"
    schedules = SCHEDULES
    role_permissions = {
        VIEWER: [
            "stacks.view_stack",
            "stacks.view_stackdomain",
            "stacks.view_stacksecret",
            "stacks.view_operation",
            "stacks.view_operationstep",
            "stacks.view_reconcilerun",
        ],
        SUPPORT: ["stacks.dry_run_stack"],
        OPERATOR: [
            "stacks.add_stack",
            "stacks.change_stack",
            "stacks.add_stackdomain",
            "stacks.change_stackdomain",
            "stacks.delete_stackdomain",
            "stacks.add_stacksecret",
            "stacks.change_stacksecret",
            "stacks.delete_stacksecret",
            "stacks.deploy_stack",
            "stacks.restart_stack",
            "stacks.stop_stack",
            "stacks.start_stack",
            "stacks.redeploy_stack",
            "stacks.rotate_stack_secrets",
            "stacks.reconcile_stacks",
            "stacks.contain_stack",
        ],
        ADMIN: ["stacks.delete_stack"],
    }
    # The 403 page names the role a custom page needs (cfadmin.permission_denied), lowest
    # first: the deploy page previews with the first and deploys with the second.
    url_permissions = {
        "stacks_stack_deploy": ("stacks.dry_run_stack", "stacks.deploy_stack"),
        "stacks_reconcile_run": ("stacks.reconcile_stacks",),
        "stacks_reconcile_repair": ("stacks.reconcile_stacks",),
        "stacks_reconcile_repair_kind": ("stacks.reconcile_stacks",),
        # Bulk by query: the page offers only the kinds the user may request; restarting is
        # the least of them (the operator role).
        "stacks_stack_bulk_query": ("stacks.restart_stack",),
    }

    def ready(self) -> None:
        # Each qcluster worker process runs recovery and the PocketBase outbox when it starts
        # and then every PROVISION_RECOVERY_INTERVAL (stacks/provisioning/recovery.py says why).
        from django.db.models.signals import post_migrate
        from django_q.signals import post_spawn

        from stacks.models.template_release import record_after_migrate
        from stacks.provisioning import start_worker_maintenance
        from stacks.services.recovery import kept_volumes_panel
        from stacks.stack_page import containment_panel, register_panel

        post_spawn.connect(start_worker_maintenance, dispatch_uid="cfadmin-worker-maintenance")
        register_panel(containment_panel)  # an isolated stack says so on its page (issue 15)
        register_panel(kept_volumes_panel)  # a deleted stack's kept volumes (issue 15)
        # The template versions this release of cfadmin ships, kept for rollbacks (issue 17).
        post_migrate.connect(record_after_migrate, sender=self, dispatch_uid="cfadmin-releases")
