"""Issue 17: the template releases each stack was deployed from."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("stacks", "0009_operation_dispatch")]

    operations = [
        migrations.CreateModel(
            name="TemplateRelease",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("template_name", models.CharField(max_length=64)),
                ("version", models.CharField(max_length=64)),
                ("manifest_text", models.TextField()),
                ("compose_text", models.TextField()),
                ("first_seen_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["template_name", "-first_seen_at", "-id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("template_name", "version"),
                        name="template_release_unique",
                        violation_error_message="This template version is stored already.",
                    )
                ],
            },
        ),
    ]
