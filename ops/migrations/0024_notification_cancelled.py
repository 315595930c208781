"""A notification that is no longer true before it is sent (an acknowledged incident's held
pages, a recovery that did not last) is cancelled, not sent."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ops", "0023_maintenance_checks")]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("held", "Held for the contact's hours"),
                    ("retrying", "Retrying"),
                    ("sent", "Sent"),
                    ("failed", "Failed"),
                    ("suppressed", "Suppressed duplicate"),
                    ("cancelled", "Cancelled (no longer true)"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
    ]
