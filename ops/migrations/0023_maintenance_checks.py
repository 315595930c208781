"""Maintenance windows' automated checks (issue 17): what the before-checks, after-checks and
the 24-hour summary record on a window; outages started inside an announced window are marked
expected; three probes verify the monthly Coolify update's machine-checkable steps ("Backup
critical data" → the window's backup was taken, "Health check" → no stack stopped, "Monitor" →
the summary has no outage). A procedure whose active version lacks them gets a new version (old
runs keep theirs); a fresh database has them already (ops/procedures.py). Running it again
changes nothing."""

import django.db.models.deletion
from django.db import migrations, models

# Frozen here (a later edit of ops/procedures.py must not change what this migration does):
# slug → {the step's words before its first colon: the probe it gets}.
PROBES: dict[str, dict[str, str]] = {
    "monthly-coolify-updates": {
        "Backup critical data": "maintenance_backup",
        "Health check": "maintenance_stacks_running",
        "Monitor": "maintenance_monitored",
    },
}


def step_key(text: str) -> str:
    return text.split(":")[0].strip()


def new_versions(apps, schema_editor):
    Procedure = apps.get_model("ops", "Procedure")
    ProcedureStep = apps.get_model("ops", "ProcedureStep")
    for slug, wanted in PROBES.items():
        procedure = Procedure.objects.filter(slug=slug, active=True).first()
        if procedure is None:
            continue
        steps = list(ProcedureStep.objects.filter(procedure=procedure).order_by("position"))
        followed = [(step, wanted.get(step_key(step.text), step.probe)) for step in steps]
        if all(step.probe == probe for step, probe in followed):
            continue  # already verified (a fresh database, or this migration ran)
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
                procedure=successor,
                position=step.position,
                text=step.text,
                command=step.command,
                probe=probe,
            )
            for step, probe in followed
        )


class Migration(migrations.Migration):
    dependencies = [("ops", "0022_rollouts")]
    operations = [
        migrations.AddField(
            model_name="maintenancewindow",
            name="after_checked_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="maintenancewindow",
            name="backup_name",
            field=models.CharField(blank=True, editable=False, max_length=150),
        ),
        migrations.AddField(
            model_name="maintenancewindow",
            name="backup_size",
            field=models.PositiveBigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="maintenancewindow",
            name="before_checked_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="maintenancewindow",
            name="check_errors",
            field=models.JSONField(blank=True, default=dict, editable=False),
        ),
        migrations.AddField(
            model_name="maintenancewindow",
            name="coolify_version_after",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="maintenancewindow",
            name="coolify_version_before",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="maintenancewindow",
            name="health_summary",
            field=models.JSONField(blank=True, default=dict, editable=False),
        ),
        migrations.AddField(
            model_name="maintenancewindow",
            name="stacks_before",
            field=models.JSONField(blank=True, default=dict, editable=False),
        ),
        migrations.AddField(
            model_name="maintenancewindow",
            name="stopped_count",
            field=models.PositiveIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="maintenancewindow",
            name="stopped_stacks",
            field=models.JSONField(blank=True, default=list, editable=False),
        ),
        migrations.AddField(
            model_name="maintenancewindow",
            name="summarised_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="outage",
            name="expected_maintenance",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="expected_outages",
                to="ops.maintenancewindow",
            ),
        ),
        migrations.AlterField(
            model_name="procedurestep",
            name="probe",
            field=models.CharField(
                blank=True,
                choices=[
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
                    ("maintenance_announced", "Maintenance announced 48h ahead"),
                    ("status_update_posted", "Public status update posted"),
                    ("maintenance_backup", "The maintenance window's backup was taken"),
                    (
                        "maintenance_stacks_running",
                        "After the maintenance, every stack that ran before runs",
                    ),
                    ("maintenance_monitored", "24h after the maintenance: no outage"),
                ],
                help_text="Verified by cfadmin itself when set.",
                max_length=32,
            ),
        ),
        migrations.RunPython(new_versions, migrations.RunPython.noop),
    ]
