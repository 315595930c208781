"""(issue 15, being built) Health checks: resources."""

from ops.checks import CheckSpec

CHECKS: list[CheckSpec] = []
