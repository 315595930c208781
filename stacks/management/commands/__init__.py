"""The stacks app's management commands: provision, reconcile, audit_templates and helpers."""
