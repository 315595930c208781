"""Ops in the admin, one module per concern: health history and the dashboard, outages,
procedures, checklist runs, escalation contacts, incidents (badges: shared presentation).
Importing them registers every ModelAdmin; the views validate, call ops modules and report."""

from ops.admin import checklists, contacts, health, incidents, outages, procedures

__all__ = ["checklists", "contacts", "health", "incidents", "outages", "procedures"]
