"""The ops permissions the admin checks, as constants, and `may` to ask about one."""

from __future__ import annotations

from cfadmin.permissions import may as may  # what the admin asks with

RUN_HEALTHCHECK = "ops.run_healthcheck"
VIEW_CHECKLISTRUN = "ops.view_checklistrun"
VIEW_INCIDENT = "ops.view_incident"
ADD_CHECKLISTRUN = "ops.add_checklistrun"
CHANGE_CHECKLISTITEM = "ops.change_checklistitem"
ADD_INCIDENT = "ops.add_incident"
CHANGE_INCIDENT = "ops.change_incident"
# The public status page (issue 16): posting an incident's public update; planning maintenance.
ADD_PUBLIC_UPDATE = "ops.add_publicupdate"
CHANGE_MAINTENANCE_WINDOW = "ops.change_maintenancewindow"
# Notifications (issue 16): retrying a failed delivery (support; a change of its row).
CHANGE_NOTIFICATION = "ops.change_notification"
# Template rollouts (issue 17): start, pause, resume, cancel, roll back (the operator role).
RUN_ROLLOUT = "ops.run_rollout"
