"""Issue 17: each tenant's rollout ring."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0003_global_search_indexes")]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="rollout_ring",
            field=models.CharField(
                choices=[
                    ("canary", "Canary"),
                    ("standard", "Standard"),
                    ("last", "Last (high-value customers)"),
                ],
                db_index=True,
                default="standard",
                help_text="When its stacks get a new template version: canary first, last ring last.",
                max_length=16,
            ),
        ),
    ]
