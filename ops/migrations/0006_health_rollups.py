"""Health data with a lifetime: daily rollups of the results (uptime for a year, while results
are pruned after HEALTH_RESULT_RETENTION_DAYS), and each live domain's HTTPS state with a row
per change instead of every domain in every result. Rollups are counted from the results
already stored, so uptime is unchanged by the migration."""

from datetime import UTC

from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import TruncDate

COUNTERS = {"ok": "ok", "warning": "warning", "down": "down"}


def count_existing_results(apps, schema_editor):
    """One rollup per check and UTC day from the results stored so far (frozen here: a later
    change of ops.models.health must not change what this migration does)."""
    result_model = apps.get_model("ops", "HealthCheckResult")
    rollup_model = apps.get_model("ops", "HealthDailyRollup")
    counts = {}
    for row in (
        result_model.objects.annotate(day=TruncDate("checked_at", tzinfo=UTC))
        .values("check_name", "day", "status")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        bucket = counts.setdefault(
            (row["check_name"], row["day"]), {"total": 0, "ok": 0, "warning": 0, "down": 0}
        )
        bucket["total"] += row["n"]
        if row["status"] in COUNTERS:
            bucket[COUNTERS[row["status"]]] += row["n"]
    rollup_model.objects.bulk_create(
        [
            rollup_model(check_name=name, day=day, **values)
            for (name, day), values in counts.items()
        ],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0005_server_names_in_procedures"),
    ]

    operations = [
        migrations.CreateModel(
            name="HealthDailyRollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("check_name", models.CharField(max_length=64, verbose_name="check")),
                ("day", models.DateField()),
                ("total", models.PositiveIntegerField(default=0)),
                ("ok", models.PositiveIntegerField(default=0)),
                ("warning", models.PositiveIntegerField(default=0)),
                ("down", models.PositiveIntegerField(default=0)),
            ],
            options={
                "ordering": ["-day", "check_name"],
            },
        ),
        migrations.CreateModel(
            name="HttpsDomainChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("domain", models.CharField(max_length=253)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("ok", "Serves HTTPS"),
                            ("expiring", "Certificate expiring"),
                            ("failing", "Failing"),
                            ("not_checked", "Not checked (external probes off)"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "previous_status",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("ok", "Serves HTTPS"),
                            ("expiring", "Certificate expiring"),
                            ("failing", "Failing"),
                            ("not_checked", "Not checked (external probes off)"),
                        ],
                        help_text="Empty: first check.",
                        max_length=16,
                    ),
                ),
                ("changed_at", models.DateTimeField(db_index=True)),
                ("message", models.TextField(blank=True)),
            ],
            options={
                "ordering": ["-changed_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="HttpsDomainState",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("domain", models.CharField(max_length=253, unique=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("ok", "Serves HTTPS"),
                            ("expiring", "Certificate expiring"),
                            ("failing", "Failing"),
                            ("not_checked", "Not checked (external probes off)"),
                        ],
                        max_length=16,
                    ),
                ),
                ("since", models.DateTimeField(help_text="When the domain entered this status.")),
                ("last_checked_at", models.DateTimeField(db_index=True)),
                ("message", models.TextField(blank=True)),
                (
                    "not_after",
                    models.DateTimeField(
                        blank=True, null=True, verbose_name="certificate valid until"
                    ),
                ),
            ],
            options={
                "ordering": ["domain"],
            },
        ),
        migrations.AddIndex(
            model_name="healthdailyrollup",
            index=models.Index(fields=["day"], name="ops_rollup_day_idx"),
        ),
        migrations.AddConstraint(
            model_name="healthdailyrollup",
            constraint=models.UniqueConstraint(
                fields=("check_name", "day"), name="one_rollup_per_check_day"
            ),
        ),
        migrations.RunPython(count_existing_results, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="httpsdomainchange",
            index=models.Index(fields=["domain", "-changed_at"], name="ops_https_change_idx"),
        ),
        migrations.AddIndex(
            model_name="httpsdomainstate",
            index=models.Index(fields=["status", "domain"], name="ops_https_status_idx"),
        ),
    ]
