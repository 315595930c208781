# Placeholder of issue 15 (filled in by the feature that owns it; no operations until then).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("stacks", "0006_operation_filter_indexes_and_drift_counts")]

    operations = []
