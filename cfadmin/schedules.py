"""The django-q2 schedules each app declares on its AppConfig (`schedules`), installed in one
step after every `migrate` (post_migrate) and by `manage.py install_schedules`; and cfadmin's
own: expired sessions cleared every day."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings


@dataclass(frozen=True)
class ScheduleSpec:
    """A task run every `minutes`: a number, or the name of the setting that holds it."""

    name: str
    func: str  # a dotted path stored in the database: keep it stable
    minutes: int | str

    def interval(self) -> int:
        return int(
            getattr(settings, self.minutes) if isinstance(self.minutes, str) else self.minutes
        )


def declared_schedules(app_configs: Iterable[Any] | None = None) -> list[ScheduleSpec]:
    """Every app's declared schedules, in INSTALLED_APPS order."""
    configs = django_apps.get_app_configs() if app_configs is None else app_configs
    return [spec for config in configs for spec in getattr(config, "schedules", ())]


def install_schedules(schedule_model: Any = None) -> list[str]:
    """Create or update every declared schedule (idempotent); returns their names."""
    if schedule_model is None:
        from django_q.models import Schedule as schedule_model
    names = []
    for spec in declared_schedules():
        schedule_model.objects.update_or_create(
            name=spec.name,
            defaults={
                "func": spec.func,
                "schedule_type": "I",  # every `minutes`
                "minutes": spec.interval(),
                "repeats": -1,
            },
        )
        names.append(spec.name)
    return names


SESSIONS_SCHEDULE = "cfadmin.clear_expired_sessions"

SCHEDULES = (ScheduleSpec(SESSIONS_SCHEDULE, "cfadmin.tasks.clear_expired_sessions_task", 24 * 60),)
