"""SQLite rebuilds a table to add a NOT NULL column (0019's Incident.public), and the rebuild
drops indexes Django does not know of: the global search's lower(title) index of 0009. Made
again here (IF NOT EXISTS: a no-op on PostgreSQL, which altered the table in place)."""

from importlib import import_module

from django.db import migrations

TITLE_INDEX = import_module("ops.migrations.0009_incident_title_search_index")


class Migration(migrations.Migration):
    dependencies = [("ops", "0024_notification_cancelled")]

    operations = [migrations.RunPython(TITLE_INDEX.create_index, migrations.RunPython.noop)]
