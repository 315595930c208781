"""Issue 17: operations queued in the background and dispatched in the Coolify call budget."""

from django.db import migrations, models


def mark_dispatched(apps, schema_editor):
    """Every operation so far was handed to the workers when it was queued."""
    operation = apps.get_model("stacks", "Operation")
    operation.objects.filter(dispatched_at__isnull=True).update(
        dispatched_at=models.F("enqueued_at")
    )


class Migration(migrations.Migration):
    dependencies = [("stacks", "0008_kept_volumes")]
    operations = [
        migrations.AddField(
            model_name="operation",
            name="background",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="operation",
            name="dispatch_slot",
            field=models.PositiveSmallIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="operation",
            name="dispatched_at",
            field=models.DateTimeField(
                blank=True, help_text="When it was handed to the workers.", null=True
            ),
        ),
        migrations.AddIndex(
            model_name="operation",
            index=models.Index(
                condition=models.Q(
                    ("background", True), ("dispatched_at__isnull", True), ("status", "queued")
                ),
                fields=["requested_at", "id"],
                name="operation_undispatched_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="operation",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("dispatch_slot__isnull", False), ("status__in", ("queued", "running"))
                ),
                fields=("dispatch_slot",),
                name="one_background_operation_per_slot",
            ),
        ),
        migrations.RunPython(mark_dispatched, migrations.RunPython.noop, elidable=True),
    ]
