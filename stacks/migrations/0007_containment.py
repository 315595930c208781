# Issue 15, containment: Stack.containment / contained_at, the isolate and release operation
# kinds, and the permission to contain stacks.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("stacks", "0006_operation_filter_indexes_and_drift_counts")]

    operations = [
        migrations.AlterModelOptions(
            name="stack",
            options={
                "ordering": ["stack_name", "id"],
                "permissions": [
                    ("deploy_stack", "Can deploy stacks"),
                    ("dry_run_stack", "Can preview a deploy (dry-run)"),
                    ("restart_stack", "Can restart stacks"),
                    ("stop_stack", "Can stop stacks"),
                    ("start_stack", "Can start stacks"),
                    ("redeploy_stack", "Can redeploy stacks"),
                    ("rotate_stack_secrets", "Can rotate stack secrets"),
                    ("contain_stack", "Can stop, isolate and release stacks for containment"),
                ],
            },
        ),
        migrations.AddField(
            model_name="stack",
            name="contained_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="stack",
            name="containment",
            field=models.CharField(
                blank=True,
                choices=[("", "Not contained"), ("isolated", "Isolated")],
                db_index=True,
                default="",
                help_text="Isolated: its domains are off in Coolify and it is stopped, on purpose.",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="operation",
            name="kind",
            field=models.CharField(
                choices=[
                    ("deploy", "Deploy"),
                    ("delete", "Delete"),
                    ("restart", "Restart"),
                    ("stop", "Stop"),
                    ("start", "Start"),
                    ("redeploy", "Redeploy"),
                    ("rotate_secrets", "Rotate secrets"),
                    ("isolate", "Isolate"),
                    ("release", "Release"),
                ],
                max_length=32,
            ),
        ),
    ]
