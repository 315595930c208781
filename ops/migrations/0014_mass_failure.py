# Mass-failure triage and auto-incidents (issue 15, ops.models.mass_failure).

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    # The user model's migration comes before ops 0004 (incidents), so before this one.
    dependencies = [("ops", "0013_leaks")]

    operations = [
        migrations.CreateModel(
            name="AutoIncident",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=32, unique=True)),
                ("opened_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "incident",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="ops.incident",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="MassFailure",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("detected_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("pattern", models.JSONField(blank=True, default=dict)),
                (
                    "incident",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="mass_failure",
                        to="ops.incident",
                    ),
                ),
                (
                    "stacks",
                    models.ManyToManyField(
                        blank=True, related_name="mass_failures", to="stacks.stack"
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="StackDownSighting",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "first_seen_at",
                    models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                ),
                ("last_seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "state",
                    models.CharField(blank=True, help_text="What Coolify said.", max_length=64),
                ),
                (
                    "stack",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="down_sighting",
                        to="stacks.stack",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="RestartWave",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.PositiveSmallIntegerField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Waiting for the previous wave"),
                            ("running", "Starting"),
                            ("succeeded", "Healthy"),
                            ("failed", "Failed"),
                            ("halted", "Not started (restart halted)"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("message", models.TextField(blank=True)),
                (
                    "requested_by_repr",
                    models.CharField(blank=True, max_length=150, verbose_name="requested by"),
                ),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "requested_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "mass_failure",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="waves",
                        to="ops.massfailure",
                    ),
                ),
                (
                    "operations",
                    models.ManyToManyField(blank=True, related_name="+", to="stacks.operation"),
                ),
                ("stacks", models.ManyToManyField(related_name="+", to="stacks.stack")),
            ],
            options={
                "ordering": ["mass_failure", "number"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("mass_failure", "number"), name="one_wave_per_number"
                    )
                ],
            },
        ),
    ]
