# Placeholder of issue 15 (filled in by the feature that owns it; no operations until then).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ops", "0011_incident_response_event_kinds"), ("stacks", "0008_kept_volumes")]

    operations = []
