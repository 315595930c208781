"""Runbook commands that name containers the way Coolify really does.

Coolify names a stack's containers `<compose service>-<service uuid>` whatever the compose file
says (bootstrap/helpers/parsers.php), so `docker logs cf-agent-<stack>` found nothing on a real
server. Each seeded procedure whose steps differ from ops/procedures.py gets a new version with
the current steps (old runs keep theirs); a fresh database already has them as version 1.
"""

from django.db import migrations

# The v1 commands this migration replaces, frozen here: a later edit of ops/procedures.py
# must not change what this migration does.
REPLACED = {
    "docker logs cf-agent-{stack}": "docker logs {container}",
    "du -sh /var/lib/docker/volumes/cf-* | sort -h": (
        "du -sh /var/lib/docker/volumes/*_cf-* | sort -h"
    ),
    "docker network disconnect coolify cf-agent-{stack}": (
        "docker network disconnect {service_uuid} {container}"
    ),
    "docker exec cf-agent-{stack} ps aux > incident-$(date +%F).log": (
        "docker exec {container} ps aux > incident-$(date +%F).log"
    ),
    "Admin > the stack > Stop  (or: docker stop cf-agent-{stack})": (
        "Admin > the stack > Stop  (or: docker stop {containers})"
    ),
    "docker commit cf-agent-{stack}": "docker commit {container}",
}


def new_versions(apps, schema_editor):
    Procedure = apps.get_model("ops", "Procedure")
    ProcedureStep = apps.get_model("ops", "ProcedureStep")
    for procedure in Procedure.objects.filter(active=True):
        steps = list(ProcedureStep.objects.filter(procedure=procedure).order_by("position"))
        if not any(step.command in REPLACED for step in steps):
            continue
        latest = Procedure.objects.filter(slug=procedure.slug).order_by("-version").first()
        Procedure.objects.filter(pk=procedure.pk).update(active=False)
        successor = Procedure.objects.create(
            slug=procedure.slug,
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
                command=REPLACED.get(step.command, step.command),
                probe=step.probe,
            )
            for step in steps
        )


class Migration(migrations.Migration):
    dependencies = [("ops", "0004_incidents")]

    operations = [migrations.RunPython(new_versions, migrations.RunPython.noop)]
