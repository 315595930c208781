"""Once created the staff groups; roles are now synced after every migrate from each app's
AppConfig (cfadmin/apps.py install_app_declarations). Kept for the migration graph."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("cfadmin", "0001_initial"),
        ("tenants", "0001_initial"),
        ("stacks", "0001_initial"),
    ]

    operations = []
