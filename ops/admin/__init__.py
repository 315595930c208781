"""Ops in the admin, one module per concern: health history and the dashboard, outages,
procedures, checklist runs, escalation contacts, incidents (badges: shared presentation).
Importing them registers every ModelAdmin; the views validate, call ops modules and report."""

from ops.admin import (
    checklists,
    contacts,
    customer_messages,
    health,
    incidents,
    maintenance,
    notification_rules,
    notifications,
    outages,
    procedures,
    rollouts,
)

__all__ = [
    "checklists",
    "contacts",
    "customer_messages",
    "health",
    "incidents",
    "maintenance",
    "notification_rules",
    "notifications",
    "outages",
    "procedures",
    "rollouts",
]
