# An index for the admin header's global search (issue 14, cfadmin/global_search.py): an
# incident by the beginning of its title, case-insensitively, without reading every incident.

from django.db import migrations

NAME = "ops_incident_title_lower_idx"


def create_index(apps, schema_editor):
    # PostgreSQL's LIKE 'x%' needs the pattern_ops operator class (any collation); SQLite's
    # range x <= value < x + U+FFFF (cfadmin/index_search.py) the plain expression index.
    if schema_editor.connection.vendor == "postgresql":
        column = "(lower(title)) text_pattern_ops"
    else:
        column = "(lower(title))"
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {NAME} ON ops_incident ({column})")


def drop_index(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {NAME}")


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0008_health_list_indexes"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
    ]
