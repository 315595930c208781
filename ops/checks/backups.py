"""(issue 15, being built) Health checks: backups."""

from ops.checks import CheckSpec

CHECKS: list[CheckSpec] = []
