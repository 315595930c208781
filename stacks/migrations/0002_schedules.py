"""Once installed the schedules; they are now installed after every migrate from each app's
AppConfig (cfadmin/apps.py install_app_declarations). Kept for the migration graph."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("stacks", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = []
