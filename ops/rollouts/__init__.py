"""Template rollouts in gated waves (issue 17): plan (the preview), engine (the operator's
actions), gate (advancing waves), validation (each redeploy's checklist), jobs (the schedule
and the operation hook)."""
