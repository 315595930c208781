"""The status page verifies two runbook steps (issue 16): the monthly Coolify update's
"Announce maintenance: 48h advance notice" (probe maintenance_announced: a window announced on
the status page far enough ahead) and the complete service outage's "Immediate: post a status
update on the status page" (probe status_update_posted: the run's incident has a public update).
A procedure whose active version lacks them gets a new version (old runs keep theirs); a fresh
database has them already (ops/procedures.py). Running it again changes nothing."""

from django.db import migrations

# Frozen here (a later edit of ops/procedures.py must not change what this migration does):
# slug → {the step's words before its first colon: the probe it gets}. A step is found by those
# words, so a procedure an admin reordered or extended keeps its other steps as they are.
PROBES: dict[str, dict[str, str]] = {
    "monthly-coolify-updates": {"Announce maintenance": "maintenance_announced"},
    "complete-service-outage": {"Immediate": "status_update_posted"},
}


def step_key(text: str) -> str:
    return text.split(":")[0].strip()


def new_versions(apps, schema_editor):
    Procedure = apps.get_model("ops", "Procedure")
    ProcedureStep = apps.get_model("ops", "ProcedureStep")
    for slug, wanted in PROBES.items():
        procedure = Procedure.objects.filter(slug=slug, active=True).first()
        if procedure is None:
            continue
        steps = list(ProcedureStep.objects.filter(procedure=procedure).order_by("position"))
        followed = [(step, wanted.get(step_key(step.text), step.probe)) for step in steps]
        if all(step.probe == probe for step, probe in followed):
            continue  # already verified (a fresh database, or this migration ran)
        latest = Procedure.objects.filter(slug=slug).order_by("-version").first()
        Procedure.objects.filter(pk=procedure.pk).update(active=False)
        successor = Procedure.objects.create(
            slug=slug,
            version=latest.version + 1,
            title=procedure.title,
            category=procedure.category,
            when=procedure.when,
            description=procedure.description,
            active=True,
        )
        ProcedureStep.objects.bulk_create(
            ProcedureStep(
                procedure=successor,
                position=step.position,
                text=step.text,
                command=step.command,
                probe=probe,
            )
            for step, probe in followed
        )


class Migration(migrations.Migration):
    dependencies = [("ops", "0020_notification_seed")]
    operations = [migrations.RunPython(new_versions, migrations.RunPython.noop)]
