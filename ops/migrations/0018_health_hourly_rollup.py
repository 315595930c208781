"""Hourly rollups of the health results, so uptime reads at most an hour of raw results per
window (the part-hour it starts in) instead of up to a day. Counted from the results already
stored, grouped by check and UTC hour in SQL, so uptime is unchanged by the migration."""

from datetime import UTC

from django.db import migrations, models
from django.db.models import Count, Q
from django.db.models.functions import TruncHour

COUNTERS = {"ok": "ok", "warning": "warning", "down": "down"}
BATCH = 1000


def count_existing_results(apps, schema_editor):
    """One rollup per check and UTC hour from the stored results: the database groups and
    counts, Python only writes the rows in batches (frozen here: a later change of
    ops.models.health must not change what this migration does)."""
    result_model = apps.get_model("ops", "HealthCheckResult")
    rollup_model = apps.get_model("ops", "HealthHourlyRollup")
    counters = {column: Count("pk", filter=Q(status=status)) for status, column in COUNTERS.items()}
    rows = (
        result_model.objects.annotate(hour=TruncHour("checked_at", tzinfo=UTC))
        .values("check_name", "hour")
        .annotate(total=Count("pk"), **counters)
        .order_by()
    )
    batch = []
    for row in rows.iterator(chunk_size=BATCH):
        batch.append(rollup_model(**row))
        if len(batch) == BATCH:
            rollup_model.objects.bulk_create(batch)
            batch = []
    rollup_model.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0017_evidence_server_resources_and_base_manager"),
    ]

    operations = [
        migrations.CreateModel(
            name="HealthHourlyRollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("check_name", models.CharField(max_length=64, verbose_name="check")),
                ("total", models.PositiveIntegerField(default=0)),
                ("ok", models.PositiveIntegerField(default=0)),
                ("warning", models.PositiveIntegerField(default=0)),
                ("down", models.PositiveIntegerField(default=0)),
                ("hour", models.DateTimeField()),
            ],
            options={
                "ordering": ["-hour", "check_name"],
                "indexes": [models.Index(fields=["hour"], name="ops_rollup_hour_idx")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("check_name", "hour"), name="one_rollup_per_check_hour"
                    )
                ],
            },
        ),
        migrations.RunPython(count_existing_results, migrations.RunPython.noop),
    ]
