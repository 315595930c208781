# Issue 15, part "evidence": immutable evidence items on an incident (ops.models.evidence).

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0011_incident_response_event_kinds"),
        ("stacks", "0008_kept_volumes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="EvidenceItem",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("service", "Coolify service"),
                            ("env_keys", "Env keys"),
                            ("logs", "Container logs"),
                            ("audit", "Audit slice"),
                            ("template", "Template"),
                            ("operations", "Operations"),
                        ],
                        max_length=16,
                    ),
                ),
                ("title", models.CharField(max_length=200)),
                ("content", models.TextField()),
                (
                    "sha256",
                    models.CharField(editable=False, max_length=64, verbose_name="SHA-256"),
                ),
                (
                    "failed",
                    models.BooleanField(
                        default=False,
                        help_text="The part could not be captured; the content says why.",
                    ),
                ),
                (
                    "captured_by_repr",
                    models.CharField(max_length=150, verbose_name="captured by"),
                ),
                ("captured_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "captured_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "incident",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="evidence",
                        to="ops.incident",
                    ),
                ),
                (
                    "stack",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="evidence",
                        to="stacks.stack",
                    ),
                ),
            ],
            options={
                "verbose_name": "evidence item",
                "ordering": ["captured_at", "id"],
                "default_permissions": ("view",),
                "indexes": [
                    models.Index(fields=["incident", "captured_at"], name="ops_evidence_incident")
                ],
            },
        ),
    ]
