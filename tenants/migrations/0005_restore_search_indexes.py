"""SQLite rebuilds the tenants table to add 0004's NOT NULL rollout ring, and the rebuild drops
indexes Django does not know of: the global search's lower(name) and lower(contact_email)
indexes of 0003. Made again here (IF NOT EXISTS: a no-op on PostgreSQL)."""

from importlib import import_module

from django.db import migrations

SEARCH_INDEXES = import_module("tenants.migrations.0003_global_search_indexes")


class Migration(migrations.Migration):
    dependencies = [("tenants", "0004_rollout_ring")]

    operations = [migrations.RunPython(SEARCH_INDEXES.create_indexes, migrations.RunPython.noop)]
