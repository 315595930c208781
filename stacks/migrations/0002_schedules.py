"""Install the django-q2 schedules cfadmin needs (idempotent; the reverse removes them)."""

from django.db import migrations

SCHEDULES = {
    "cfadmin.recover_stale_operations": {
        "func": "stacks.tasks.recover_stale_operations_task",
        "schedule_type": "I",  # every `minutes`
        "minutes": 1,
        "repeats": -1,
    },
}


def install(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, fields in SCHEDULES.items():
        Schedule.objects.update_or_create(name=name, defaults=fields)


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=list(SCHEDULES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("stacks", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(install, remove)]
