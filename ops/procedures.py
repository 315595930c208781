"""The runbook's procedures, as data: seeded by a migration, versioned in the database.

Commands keep the runbook's shape; hosts are placeholders ($COOLIFY_HOST, $POCKETBASE_URL)
and {stack}, {tenant}, {domain}, {service_uuid}, {container} (the stack's main container as
Coolify names it: `<compose service>-<service uuid>`) and {containers} (all of them) are
filled in for a run's stack.
"""

from __future__ import annotations

from ops.models.procedures import ProcedureCategory

POST_DEPLOY = "post-deploy-validation"
POST_DELETE = "post-delete-validation"
DAILY_HEALTH_CHECK = "daily-health-check"
# Its runs plan maintenance windows (ops/maintenance), whose checks verify three of its steps.
MONTHLY_COOLIFY_UPDATES = "monthly-coolify-updates"

# (slug, title, category, when, [(step, command, probe)])
RUNBOOK_PROCEDURES: list[tuple[str, str, str, str, list[tuple[str, str, str]]]] = [
    (
        POST_DEPLOY,
        "Post-deploy validation",
        ProcedureCategory.VALIDATION,
        "After every deploy (opens by itself when a deploy succeeds)",
        [
            (
                "Service appears in Coolify and is healthy",
                'curl -H "Authorization: Bearer $COOLIFY_TOKEN" '
                "https://$COOLIFY_HOST/api/v1/services/{service_uuid}",
                "service_present",
            ),
            ("Domain resolves", "dig +short {domain}", "domain_resolves"),
            ("Domain serves HTTPS", "curl -sI https://{domain}", "https_serves"),
            (
                'PocketBase record created with status "running"',
                'curl -H "Authorization: Bearer $PB_TOKEN" "$POCKETBASE_URL/api/collections/'
                "agent_stacks/records?filter=stack_name='{stack}'\"",
                "record_running",
            ),
            (
                "Container logs show successful startup",
                "docker logs {container}",
                "logs_show_startup",
            ),
        ],
    ),
    (
        POST_DELETE,
        "Post-delete validation",
        ProcedureCategory.VALIDATION,
        "After every delete (opens by itself when a delete succeeds)",
        [
            (
                "Service removed from Coolify",
                'curl -H "Authorization: Bearer $COOLIFY_TOKEN" '
                "https://$COOLIFY_HOST/api/v1/services/{service_uuid}",
                "service_gone",
            ),
            ("Domain no longer served", "curl -sI https://{domain}", "domain_not_served"),
            (
                "PocketBase record deleted",
                'curl -H "Authorization: Bearer $PB_TOKEN" "$POCKETBASE_URL/api/collections/'
                "agent_stacks/records?filter=stack_name='{stack}'\"",
                "record_gone",
            ),
            ("Docker volumes cleaned up", "docker volume ls | grep cf-agent-{tenant}", ""),
        ],
    ),
    (
        DAILY_HEALTH_CHECK,
        "Daily health check",
        ProcedureCategory.MONITORING,
        "Every morning",
        [
            (
                "Coolify API OK",
                "curl -f https://$COOLIFY_HOST/api/v1/projects >/dev/null",
                "coolify_api",
            ),
            ("PocketBase OK", "curl -f $POCKETBASE_URL/api/health >/dev/null", "pocketbase_health"),
            ("Count active stacks", "docker ps | grep -c cf-agent", "active_stacks"),
            (
                "Check disk usage",
                "ssh root@$COOLIFY_HOST \"df -h | grep -E '(Filesystem|/$)'\"",
                "disk_usage",
            ),
        ],
    ),
    (
        "weekly-resource-check",
        "Weekly resource check",
        ProcedureCategory.MONITORING,
        "Every week",
        [
            (
                "Container resource usage",
                "docker stats --no-stream | head -10",
                "container_resources",
            ),
            (
                "Disk usage by project",
                "du -sh /var/lib/docker/volumes/*_cf-* | sort -h",
                "volume_sizes",
            ),
            (
                "Top resource consumers",
                'docker ps --format "table {{{{.Names}}}}\\t{{{{.Status}}}}" | head -20',
                "container_resources",
            ),
        ],
    ),
    (
        "weekly-template-updates",
        "Weekly template updates",
        ProcedureCategory.MAINTENANCE,
        "Before deploying template changes",
        [
            (
                "Test locally: dry-run with a test tenant",
                "python manage.py provision deploy --tenant test-tenant ... --dry-run",
                "",
            ),
            (
                "Deploy to staging: test tenant first",
                "python manage.py provision deploy --tenant test-tenant ...",
                "",
            ),
            (
                "Validate security: run the security audit on the new template",
                "python manage.py audit_templates",
                "",
            ),
            ("Document changes: update the template documentation", "", ""),
            (
                "Gradual rollout: high-value customers last",
                "Admin > Stacks > filter 'template version: outdated' > Redeploy…",
                "",
            ),
        ],
    ),
    (
        MONTHLY_COOLIFY_UPDATES,
        "Monthly Coolify updates",
        ProcedureCategory.MAINTENANCE,
        "Coolify maintenance window",
        [
            ("Announce maintenance: 48h advance notice", "", "maintenance_announced"),
            (
                "Backup critical data: PocketBase + key volumes",
                "",
                "maintenance_backup",
            ),
            ("Update Coolify: follow the upstream guide", "", ""),
            ("Restart services: all containers auto-restart", "", ""),
            (
                "Health check: verify all stacks operational",
                "python manage.py healthcheck",
                "maintenance_stacks_running",
            ),
            (
                "Monitor: 24h post-update monitoring",
                "",
                "maintenance_monitored",
            ),
        ],
    ),
    (
        "complete-service-outage",
        "Complete service outage",
        ProcedureCategory.EMERGENCY,
        "If the Coolify server is down",
        [
            ("Immediate: post a status update on the status page", "", "status_update_posted"),
            ("SSH to the server", "ssh root@$COOLIFY_HOST", ""),
            ("Check system status", "systemctl status coolify", "coolify_api"),
            ("Restart if needed", "systemctl restart coolify", ""),
            (
                "Verify: all services auto-restart via Docker",
                "python manage.py healthcheck",
                "active_stacks",
            ),
        ],
    ),
    (
        "mass-container-failures",
        "Mass container failures",
        ProcedureCategory.EMERGENCY,
        "If multiple stacks fail simultaneously",
        [
            (
                "Check server resources: RAM, disk, CPU",
                'ssh root@$COOLIFY_HOST "df -h && free -h"',
                "server_resources",
            ),
            (
                "Identify the pattern: same template? same tenant? time-based?",
                "The incident's Triage panel  (or: Admin > Stacks > filter by status, template, "
                "tenant)",
                "pattern_identified",
            ),
            (
                "Emergency stop: high-resource stacks first (base-llm)",
                "The incident's Triage > Emergency stop  (or: Admin > Stacks > template base-llm > "
                "Stop selected; or: docker ps | grep cf-webui | awk '{{print $1}}' "
                "| xargs docker stop)",
                "stacks_stopped",
            ),
            (
                "Gradual restart after the resource situation improves",
                "The incident's Triage > Gradual restart in waves  "
                "(or: Admin > Stacks > Start selected)",
                "",
            ),
        ],
    ),
    (
        "data-recovery",
        "Data recovery",
        ProcedureCategory.EMERGENCY,
        "If customer data is lost",
        [
            ("Don't panic: check if the volume still exists", "", "volume_exists"),
            ("List volumes", "docker volume ls | grep cf-agent-{tenant}", ""),
            (
                "If the volume exists: redeploy the stack with the same volume name",
                "Admin > the deleted stack > Redeploy onto kept volumes  (a live stack: Redeploy…)",
                "",
            ),
            (
                "If the volume is gone: check the backups (PocketBase's: a recent one exists)",
                "The incident's Data recovery > Take a PocketBase backup, and its backups list",
                "pocketbase_backup",
            ),
            ("Communicate: update the customer immediately with the status", "", ""),
        ],
    ),
    (
        "suspected-container-compromise",
        "Suspected container compromise",
        ProcedureCategory.SECURITY,
        "A stack's container may be compromised",
        [
            (
                "Isolate immediately",
                "docker network disconnect {service_uuid} {container}",
                "stacks_isolated",
            ),
            (
                "Capture state",
                "docker exec {container} ps aux > incident-$(date +%F).log",
                "evidence_captured",
            ),
            (
                "Stop the container",
                "The incident's Contain > Stop, or Admin > the stack > Stop  "
                "(or: docker stop {containers})",
                "stacks_stopped",
            ),
            (
                "Preserve evidence: create a container snapshot",
                "docker commit {container}",
                "",
            ),
            ("Notify the security team and the customer", "See the escalation contacts", ""),
            (
                "Investigate: logs, template changes, env vars",
                "The incident's Evidence: service, env keys, logs, audit slice, template, "
                "operations",
                "",
            ),
        ],
    ),
    (
        "api-key-exposure",
        "API key exposure",
        ProcedureCategory.SECURITY,
        "An API key or bot token leaked",
        [
            (
                "Rotate immediately: all affected API keys",
                "The incident's Leaked value > Rotate a leaked value everywhere  "
                "(one stack: Admin > the stack > Rotate secrets…)",
                "keys_rotated",
            ),
            (
                "Update the stack: deploy with the new keys (rotation restarts it)",
                "",
                "keys_rotated",
            ),
            ("Audit access: check the provider's API usage logs", "", ""),
            (
                "Document in the incident tracking system",
                "The incident's Postmortem > Export as Markdown",
                "",
            ),
        ],
    ),
]

# (issue type, team, response minutes, business hours only, priority)
ESCALATION_CONTACTS: list[tuple[str, str, int, bool, int]] = [
    ("Security Incident", "Security Team", 15, False, 10),
    ("Platform Down", "Platform Team", 30, False, 20),
    ("Customer Data Loss", "Backup Team", 60, False, 30),
    ("Billing Issues", "Billing Team", 240, True, 40),
]
