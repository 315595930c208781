"""A maintenance window's before-checks run MAINTENANCE_BEFORE_CHECKS_MINUTES before it starts
(ops/maintenance/jobs.py run_due): the runbook backs up and records Coolify's version before
the update, not once it has begun. A window planned too late for that gets them at once, up to
its end; each runs once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from ops.maintenance import jobs
from ops.models import MaintenanceWindow

pytestmark = pytest.mark.django_db


class Coolify:
    """What the before-checks read from Coolify."""

    def version(self) -> str:
        return "4.3.11"

    def list_services(self) -> list[dict[str, Any]]:
        return []


class PocketBase:
    """What the before-checks ask of PocketBase: a backup, then the listing."""

    def __init__(self) -> None:
        self.backups: list[str] = []

    def create_backup(self, name: str) -> None:
        self.backups.append(name)

    def list_backups(self) -> list[dict[str, Any]]:
        return [{"key": name, "size": 1024} for name in self.backups]


@pytest.fixture
def run_due():
    pocketbase = PocketBase()

    def run(now) -> dict[str, int]:
        return jobs.run_due(now, coolify=Coolify(), pocketbase=pocketbase)

    run.pocketbase = pocketbase
    return run


def planned(starts_in: timedelta, lasts: timedelta = timedelta(hours=2)) -> MaintenanceWindow:
    starts = timezone.now() + starts_in
    return MaintenanceWindow.objects.create(
        title="Coolify update", starts_at=starts, ends_at=starts + lasts
    )


def test_a_window_starting_in_ten_minutes_gets_its_before_checks_now(run_due):
    soon = planned(timedelta(minutes=10))
    now = timezone.now()

    assert run_due(now)["before"] == 1

    soon.refresh_from_db()
    assert soon.before_checked_at == now < soon.starts_at
    assert soon.coolify_version_before == "4.3.11"
    assert soon.backup_name and soon.backup_name in run_due.pocketbase.backups
    assert run_due(now + timedelta(minutes=11))["before"] == 0  # once, not again at the start


def test_one_starting_in_two_hours_waits_until_the_lead_time(run_due):
    later = planned(timedelta(hours=2))
    now = timezone.now()

    assert run_due(now)["before"] == 0
    assert run_due(later.starts_at - timedelta(minutes=16))["before"] == 0
    later.refresh_from_db()
    assert later.before_checked_at is None

    assert run_due(later.starts_at - timedelta(minutes=15))["before"] == 1
    later.refresh_from_db()
    assert later.before_checked_at == later.starts_at - timedelta(minutes=15)


def test_the_lead_is_a_setting(run_due, settings):
    settings.MAINTENANCE_BEFORE_CHECKS_MINUTES = 60
    in_fifty = planned(timedelta(minutes=50))
    assert run_due(timezone.now())["before"] == 1
    in_fifty.refresh_from_db()
    assert in_fifty.before_checked_at is not None

    settings.MAINTENANCE_BEFORE_CHECKS_MINUTES = 0  # at the start, as before
    at_start = planned(timedelta(minutes=10))
    assert run_due(timezone.now())["before"] == 0
    assert run_due(at_start.starts_at)["before"] == 1


def test_a_window_planned_late_still_gets_them_until_its_end_and_a_past_one_not(run_due):
    begun = planned(-timedelta(minutes=30), lasts=timedelta(hours=1))
    over = planned(-timedelta(hours=3), lasts=timedelta(hours=1))
    cancelled = planned(timedelta(minutes=5))
    MaintenanceWindow.objects.filter(pk=cancelled.pk).update(cancelled_at=timezone.now())

    assert run_due(timezone.now())["before"] == 1

    for window in (begun, over, cancelled):
        window.refresh_from_db()
    assert begun.before_checked_at is not None
    assert over.before_checked_at is None and cancelled.before_checked_at is None
