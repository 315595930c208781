"""Issue 17: template rollouts in gated waves."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0021_status_page_probes"),
        ("stacks", "0010_template_releases"),
        ("tenants", "0004_rollout_ring"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Rollout",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("template_name", models.CharField(max_length=64)),
                ("to_version", models.CharField(max_length=64)),
                (
                    "from_versions",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="The versions its stacks ran when it was created.",
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("draft", "Draft"),
                            ("running", "Running"),
                            ("paused", "Paused"),
                            ("halted", "Halted"),
                            ("cancelled", "Cancelled"),
                            ("completed", "Completed"),
                        ],
                        default="draft",
                        max_length=16,
                    ),
                ),
                (
                    "status_detail",
                    models.TextField(blank=True, help_text="Why it halted, paused or ended."),
                ),
                (
                    "wave_sizes",
                    models.JSONField(default=list, help_text='Per ring, e.g. ["1", "5%", "rest"].'),
                ),
                ("soak_minutes", models.PositiveIntegerField(default=30)),
                ("require_validation", models.BooleanField(default=True)),
                (
                    "filters",
                    models.JSONField(
                        blank=True, default=dict, help_text="The stack query it came from."
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    (
                        "run_rollout",
                        "Can start, pause, resume, cancel and roll back template rollouts",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="RolloutWave",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.PositiveIntegerField()),
                (
                    "ring",
                    models.CharField(
                        choices=[
                            ("canary", "Canary"),
                            ("standard", "Standard"),
                            ("last", "Last (high-value customers)"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "size",
                    models.CharField(
                        blank=True, help_text='The size it came from: "5%".', max_length=16
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("running", "Running"),
                            ("passed", "Passed"),
                            ("failed", "Failed"),
                            ("rolled_back", "Rolled back"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "rollout",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="waves",
                        to="ops.rollout",
                    ),
                ),
            ],
            options={
                "ordering": ["rollout", "number"],
            },
        ),
        migrations.CreateModel(
            name="RolloutStack",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("from_version", models.CharField(blank=True, max_length=64)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("deploying", "Deploying"),
                            ("verifying", "Verifying"),
                            ("passed", "Passed"),
                            ("failed", "Failed"),
                            ("rolled_back", "Rolled back"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("error", models.TextField(blank=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "operation",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="stacks.operation",
                    ),
                ),
                (
                    "rollback_operation",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="stacks.operation",
                    ),
                ),
                (
                    "rollout",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="stacks",
                        to="ops.rollout",
                    ),
                ),
                (
                    "stack",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="rollout_entries",
                        to="stacks.stack",
                    ),
                ),
                (
                    "wave",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="stacks",
                        to="ops.rolloutwave",
                    ),
                ),
            ],
            options={
                "ordering": ["rollout", "id"],
            },
        ),
        migrations.AddIndex(
            model_name="rollout",
            index=models.Index(fields=["status", "created_at"], name="rollout_status_idx"),
        ),
        migrations.AddConstraint(
            model_name="rolloutwave",
            constraint=models.UniqueConstraint(
                fields=("rollout", "number"), name="rollout_wave_unique"
            ),
        ),
        migrations.AddIndex(
            model_name="rolloutstack",
            index=models.Index(fields=["wave", "status"], name="rollout_stack_wave_idx"),
        ),
        migrations.AddConstraint(
            model_name="rolloutstack",
            constraint=models.UniqueConstraint(
                fields=("rollout", "stack"), name="rollout_stack_unique"
            ),
        ),
    ]
