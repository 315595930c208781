"""Seed the runbook: its procedures (version 1), the escalation table, the health-check
schedule; and give the roles the ops permissions. Idempotent; the reverse removes the seeds.
"""

from django.db import migrations

HEALTHCHECK_SCHEDULE = "cfadmin.health_checks"


def seed(apps, schema_editor):
    from ops.procedures import ESCALATION_CONTACTS, RUNBOOK_PROCEDURES

    Procedure = apps.get_model("ops", "Procedure")
    ProcedureStep = apps.get_model("ops", "ProcedureStep")
    for slug, title, category, when, steps in RUNBOOK_PROCEDURES:
        procedure, created = Procedure.objects.get_or_create(
            slug=slug,
            version=1,
            defaults={"title": title, "category": category, "when": when, "active": True},
        )
        if created:
            ProcedureStep.objects.bulk_create(
                ProcedureStep(
                    procedure=procedure, position=position, text=text, command=command, probe=probe
                )
                for position, (text, command, probe) in enumerate(steps, start=1)
            )
    EscalationContact = apps.get_model("ops", "EscalationContact")
    for issue_type, team, minutes, business_only, priority in ESCALATION_CONTACTS:
        EscalationContact.objects.get_or_create(
            issue_type=issue_type,
            defaults={
                "team": team,
                "response_minutes": minutes,
                "business_hours_only": business_only,
                "priority": priority,
                "hours": "business hours" if business_only else "24/7",
            },
        )


def unseed(apps, schema_editor):
    from ops.procedures import ESCALATION_CONTACTS, RUNBOOK_PROCEDURES

    slugs = [slug for slug, *_ in RUNBOOK_PROCEDURES]
    apps.get_model("ops", "ChecklistRun").objects.filter(procedure__slug__in=slugs).delete()
    apps.get_model("ops", "Procedure").objects.filter(slug__in=slugs, version=1).delete()
    apps.get_model("ops", "EscalationContact").objects.filter(
        issue_type__in=[row[0] for row in ESCALATION_CONTACTS]
    ).delete()
    apps.get_model("django_q", "Schedule").objects.filter(name=HEALTHCHECK_SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0002_health_checklists_contacts"),
        ("stacks", "0002_schedules"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
