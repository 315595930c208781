"""Procedures follow the incident actions (issue 15): the emergency, security and weekly
resource steps that cfadmin now does and verifies get their automatic check (ProcedureStep.probe)
and a command naming the incident action. Each seeded procedure whose active version lacks them
gets a new version (old runs keep theirs); a fresh database already has them as version 1
(ops/procedures.py). Running it again changes nothing.
"""

from django.db import migrations, models

# Frozen here (a later edit of ops/procedures.py must not change what this migration does):
# slug → [(the step's words before its first colon, new text, new command, new probe)]. A step
# is found by those words, so a procedure an admin reordered or extended keeps its other steps.
FOLLOW: dict[str, list[tuple[str, str, str, str]]] = {
    "weekly-resource-check": [
        (
            "Container resource usage",
            "Container resource usage",
            "docker stats --no-stream | head -10",
            "container_resources",
        ),
        (
            "Disk usage by project",
            "Disk usage by project",
            "du -sh /var/lib/docker/volumes/*_cf-* | sort -h",
            "volume_sizes",
        ),
        (
            "Top resource consumers",
            "Top resource consumers",
            'docker ps --format "table {{{{.Names}}}}\\t{{{{.Status}}}}" | head -20',
            "container_resources",
        ),
    ],
    "complete-service-outage": [
        ("Check system status", "Check system status", "systemctl status coolify", "coolify_api"),
        (
            "Verify",
            "Verify: all services auto-restart via Docker",
            "python manage.py healthcheck",
            "active_stacks",
        ),
    ],
    "mass-container-failures": [
        (
            "Check server resources",
            "Check server resources: RAM, disk, CPU",
            'ssh root@$COOLIFY_HOST "df -h && free -h"',
            "server_resources",
        ),
        (
            "Identify the pattern",
            "Identify the pattern: same template? same tenant? time-based?",
            "The incident's Triage panel  (or: Admin > Stacks > filter by status, template, tenant)",
            "pattern_identified",
        ),
        (
            "Emergency stop",
            "Emergency stop: high-resource stacks first (base-llm)",
            "The incident's Triage > Emergency stop  (or: Admin > Stacks > template base-llm > Stop selected; or: docker ps | grep cf-webui | awk '{{print $1}}' | xargs docker stop)",
            "stacks_stopped",
        ),
        (
            "Gradual restart after the resource situation improves",
            "Gradual restart after the resource situation improves",
            "The incident's Triage > Gradual restart in waves  (or: Admin > Stacks > Start selected)",
            "",
        ),
    ],
    "data-recovery": [
        ("Don't panic", "Don't panic: check if the volume still exists", "", "volume_exists"),
        (
            "If the volume exists",
            "If the volume exists: redeploy the stack with the same volume name",
            "Admin > the deleted stack > Redeploy onto kept volumes  (a live stack: Redeploy…)",
            "",
        ),
        (
            "If the volume is gone",
            "If the volume is gone: check the backups (PocketBase's: a recent one exists)",
            "The incident's Data recovery > Take a PocketBase backup, and its backups list",
            "pocketbase_backup",
        ),
    ],
    "suspected-container-compromise": [
        (
            "Isolate immediately",
            "Isolate immediately",
            "docker network disconnect {service_uuid} {container}",
            "stacks_isolated",
        ),
        (
            "Capture state",
            "Capture state",
            "docker exec {container} ps aux > incident-$(date +%F).log",
            "evidence_captured",
        ),
        (
            "Stop the container",
            "Stop the container",
            "The incident's Contain > Stop, or Admin > the stack > Stop  (or: docker stop {containers})",
            "stacks_stopped",
        ),
        (
            "Investigate",
            "Investigate: logs, template changes, env vars",
            "The incident's Evidence: service, env keys, logs, audit slice, template, operations",
            "",
        ),
    ],
    "api-key-exposure": [
        (
            "Rotate immediately",
            "Rotate immediately: all affected API keys",
            "The incident's Leaked value > Rotate a leaked value everywhere  (one stack: Admin > the stack > Rotate secrets…)",
            "keys_rotated",
        ),
        (
            "Update the stack",
            "Update the stack: deploy with the new keys (rotation restarts it)",
            "",
            "keys_rotated",
        ),
        (
            "Document in the incident tracking system",
            "Document in the incident tracking system",
            "The incident's Postmortem > Export as Markdown",
            "",
        ),
    ],
}

# ProcedureStep.probe's choices (ops.models.procedures.Probe) as of this migration.
CHOICES = [
    ("service_present", "Service present in Coolify and healthy"),
    ("domain_resolves", "Domain resolves (DNS)"),
    ("https_serves", "Domain serves HTTPS"),
    ("record_running", "PocketBase record present with status running"),
    ("logs_show_startup", "Container logs show start-up"),
    ("service_gone", "Service gone from Coolify"),
    ("domain_not_served", "Domain no longer served"),
    ("record_gone", "PocketBase record gone"),
    ("coolify_api", "Coolify API answers"),
    ("pocketbase_health", "PocketBase answers"),
    ("active_stacks", "Active stacks match cfadmin"),
    ("disk_usage", "Disk usage below the threshold"),
    ("evidence_captured", "Evidence captured on the incident"),
    ("stacks_isolated", "The incident's stacks are isolated"),
    ("stacks_stopped", "The incident's stacks are stopped"),
    ("keys_rotated", "Every rotation of the exposed key succeeded"),
    ("pattern_identified", "Mass-failure pattern identified"),
    ("volume_exists", "The stack's volumes still exist"),
    ("server_resources", "Server memory, disk and load measured"),
    ("container_resources", "Containers within their stacks' limits"),
    ("volume_sizes", "Volume sizes per tenant measured"),
    ("pocketbase_backup", "A recent PocketBase backup exists"),
]


def step_key(text: str) -> str:
    return text.split(":")[0].strip()


def new_versions(apps, schema_editor):
    Procedure = apps.get_model("ops", "Procedure")
    ProcedureStep = apps.get_model("ops", "ProcedureStep")
    for slug, changes in FOLLOW.items():
        procedure = Procedure.objects.filter(slug=slug, active=True).first()
        if procedure is None:
            continue
        wanted = {key: (text, command, probe) for key, text, command, probe in changes}
        steps = list(ProcedureStep.objects.filter(procedure=procedure).order_by("position"))
        followed = [
            (step, wanted.get(step_key(step.text), (step.text, step.command, step.probe)))
            for step in steps
        ]
        if all((step.text, step.command, step.probe) == new for step, new in followed):
            continue  # already follows (a fresh database, or this migration ran)
        latest = Procedure.objects.filter(slug=slug).order_by("-version").first()
        Procedure.objects.filter(pk=procedure.pk).update(active=False)
        successor = Procedure.objects.create(
            slug=slug,
            version=latest.version + 1,
            title=procedure.title,
            category=procedure.category,
            when=procedure.when,
            description=procedure.description,
            active=True,
        )
        ProcedureStep.objects.bulk_create(
            ProcedureStep(
                procedure=successor, position=step.position, text=text, command=command, probe=probe
            )
            for step, (text, command, probe) in followed
        )


class Migration(migrations.Migration):
    dependencies = [("ops", "0015_postmortem_resources")]

    operations = [
        migrations.AlterField(
            model_name="procedurestep",
            name="probe",
            field=models.CharField(
                blank=True,
                choices=CHOICES,
                help_text="Verified by cfadmin itself when set.",
                max_length=32,
            ),
        ),
        migrations.RunPython(new_versions, migrations.RunPython.noop),
    ]
