"""Health alerts inside an announced maintenance window are expected: an outage that starts
inside one is marked with it. It is still notified (its title says it is expected): the
maintenance may have broken something it should not have, and someone must look."""

from __future__ import annotations

from ops.models import MaintenanceWindow, Outage


def expected_window(outage: Outage) -> MaintenanceWindow | None:
    """The announced window the outage began in, marking the outage (once) with it."""
    if outage.expected_maintenance_id is not None:
        return outage.expected_maintenance
    window = MaintenanceWindow.objects.covering(outage.started_at).order_by("starts_at").first()
    if window is not None:
        Outage.objects.filter(pk=outage.pk).update(expected_maintenance=window)
        outage.expected_maintenance = window
    return window


def expected_label(window: MaintenanceWindow) -> str:
    """How notifications and pages say it: `expected (maintenance “Coolify update”)`."""
    return f"expected (maintenance “{window.title}”)"
