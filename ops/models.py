"""Health checks, runbook checklists, incidents and escalation contacts (see DESIGN.md)."""
