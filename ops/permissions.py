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
