# Placeholder of issue 15 (filled in by the feature that owns it; no operations until then).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ops", "0012_evidence")]

    operations = []
