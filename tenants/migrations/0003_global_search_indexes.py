# Indexes for the admin header's global search (issue 14, cfadmin/global_search.py): a tenant
# by the beginning of its slug, name or contact address, case-insensitively, answered by an
# index and not by reading every tenant.

from django.db import migrations

# (index, table, indexed expression). Names and addresses are matched on lower(column);
# PostgreSQL's LIKE 'x%' needs the pattern_ops operator class (any collation), SQLite's range
# x <= value < x + U+FFFF (cfadmin/index_search.py) the plain expression index.
INDEXES = (
    ("tenant_name_lower_idx", "tenants_tenant", "lower(name)", "text_pattern_ops"),
    ("tenant_contact_lower_idx", "tenants_tenant", "lower(contact_email)", "text_pattern_ops"),
    # The slug's unique index answers ranges, and LIKE only under the C collation.
    ("tenant_slug_prefix_idx", "tenants_tenant", "slug", "varchar_pattern_ops"),
)


def create_indexes(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    for name, table, expression, opclass in INDEXES:
        if not postgresql and "(" not in expression:
            continue  # SQLite: the unique index already answers the slug's range
        column = f"({expression}) {opclass}" if postgresql else f"({expression})"
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})")


def drop_indexes(apps, schema_editor):
    for name, _table, _expression, _opclass in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_list_indexes"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes),
    ]
