# A validation run's link to the deploy or delete that opened it, as a column
# (ChecklistRun.operation). Until now ops.checklists.open_validation_run only wrote
# "Opened by Deploy #12" in the run's note and pages parsed that note; the runs it opened
# so far are linked here from the same note, and only to an operation of the run's own stack
# (a person's note that merely reads so links nothing).

import re

import django.db.models.deletion
from django.db import migrations, models

# The hook opened runs after deploys and deletes only; its note names the kind's label.
KIND_OF_LABEL = {"Deploy": "deploy", "Delete": "delete"}
OPENED_BY = re.compile(r"^Opened by (?P<label>Deploy|Delete) #(?P<pk>\d+)$")
BATCH = 500


def opened_by(note: str) -> tuple[int, str] | None:
    """(operation id, kind) in a note the hook wrote ("Opened by Deploy #12"), or None."""
    match = OPENED_BY.match(note.strip())
    return (int(match["pk"]), KIND_OF_LABEL[match["label"]]) if match else None


def link_runs_to_operations(apps, schema_editor):
    ChecklistRun = apps.get_model("ops", "ChecklistRun")
    Operation = apps.get_model("stacks", "Operation")
    db = schema_editor.connection.alias
    candidates = (
        ChecklistRun.objects.using(db)
        .filter(stack__isnull=False, operation__isnull=True, note__contains="Opened by ")
        .order_by("pk")
        .values_list("pk", "stack_id", "note")
    )
    last = 0
    # By pages of ids, each read in full before it is written: every run once, few queries.
    while rows := list(candidates.filter(pk__gt=last)[:BATCH]):
        last = rows[-1][0]
        wanted = {pk: (opened_by(note), stack_id) for pk, stack_id, note in rows}
        wanted = {pk: (*found, stack) for pk, (found, stack) in wanted.items() if found}
        # An operation of the run's own stack, of the kind the note names.
        known = {
            (operation, kind, stack_id)
            for operation, kind, stack_id in Operation.objects.using(db)
            .filter(pk__in={operation for operation, _, _ in wanted.values()})
            .values_list("pk", "kind", "stack_id")
        }
        linked = [
            ChecklistRun(pk=pk, operation_id=found[0])
            for pk, found in wanted.items()
            if found in known
        ]
        ChecklistRun.objects.using(db).bulk_update(linked, ["operation"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0009_incident_title_search_index"),
        ("stacks", "0006_operation_filter_indexes_and_drift_counts"),
    ]

    operations = [
        migrations.AddField(
            model_name="checklistrun",
            name="operation",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="checklist_runs",
                to="stacks.operation",
            ),
        ),
        # Nothing to undo: removing the column removes the links.
        migrations.RunPython(link_runs_to_operations, migrations.RunPython.noop),
    ]
