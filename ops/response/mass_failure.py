"""(issue 15, being built) The incident response feature "mass_failure"."""

from ops.response import Feature

FEATURE = Feature(key="mass_failure")
