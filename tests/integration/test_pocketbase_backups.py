"""PocketBase backups against the real PocketBase the tests start: the client creates and lists
them, the incident's job records them, and the health check reads them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ops.checks.backups import backup_age_result, parse_modified
from ops.models import CheckStatus, IncidentEventKind
from ops.response import recovery_jobs
from tests.unit.incident_helpers import events, make_incident

pytestmark = pytest.mark.integration


def test_a_backup_is_created_and_listed(pocketbase):
    before = {b["key"] for b in pocketbase.list_backups()}

    name = pocketbase.create_backup("cfadmin_test_backup_1.zip")

    backups = pocketbase.list_backups()
    [made] = [b for b in backups if b["key"] == name]
    assert name not in before
    assert made["size"] > 0
    modified = parse_modified(made["modified"])
    assert modified is not None and abs(timezone.now() - modified) < timedelta(minutes=5)
    status, _, details = backup_age_result(backups, now=timezone.now(), max_age_hours=26)
    assert status == CheckStatus.OK and details["newest"] == backups[0]["key"]


def test_a_bad_backup_name_is_refused_before_any_call(pocketbase):
    with pytest.raises(ValueError):
        pocketbase.create_backup("../../etc/passwd.zip")


@pytest.mark.django_db
def test_the_incident_job_takes_a_backup_and_tells_the_timeline(pocketbase, operator):
    incident = make_incident(actor=operator)
    name = recovery_jobs.backup_name(incident)

    assert recovery_jobs.take_backup(incident.pk, name, operator.pk, pocketbase)

    listed, fetched_at = recovery_jobs.stored_listing()
    assert name in [b["key"] for b in listed] and fetched_at is not None
    [line] = events(incident, IncidentEventKind.RECOVERY)
    assert line.startswith(f"PocketBase backup {name} taken, ") and line.endswith(" bytes")
