# The ops admin pages at scale (issue 13): the checklist runs list's order, an incident's
# latest timeline events.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0006_health_rollups"),  # issue 13: chained after the health rollups
    ]

    operations = [
        migrations.AddIndex(
            model_name="checklistrun",
            index=models.Index(fields=["started_at", "id"], name="ops_run_started"),
        ),
        migrations.AddIndex(
            model_name="incidentevent",
            index=models.Index(fields=["incident", "at"], name="ops_event_incident_at"),
        ),
    ]
