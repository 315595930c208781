"""(issue 15, being built) The incident response feature "recovery"."""

from ops.response import Feature

FEATURE = Feature(key="recovery")
