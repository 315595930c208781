"""Server resources (issue 15) need no model of their own: the measured figures live in the
three health checks' results (HealthCheckResult.details; ops/checks/resources.py)."""
