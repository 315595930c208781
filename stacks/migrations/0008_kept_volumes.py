# Issue 15 (data recovery): volumes a "keep volumes" delete left on the server.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("stacks", "0007_containment")]

    operations = [
        migrations.CreateModel(
            name="KeptVolumes",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "service_uuid",
                    models.CharField(max_length=64, verbose_name="Coolify service uuid"),
                ),
                (
                    "volumes",
                    models.JSONField(default=list, help_text="Docker volume names on the server."),
                ),
                ("kept_at", models.DateTimeField(auto_now_add=True)),
                (
                    "reused_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="reused_volumes",
                        to="stacks.stack",
                    ),
                ),
                (
                    "stack",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="kept_volumes",
                        to="stacks.stack",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "kept volumes",
                "ordering": ["-kept_at", "-id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("stack", "service_uuid"), name="kept_volumes_once_per_service"
                    )
                ],
            },
        ),
    ]
