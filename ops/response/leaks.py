"""(issue 15, being built) The incident response feature "leaks"."""

from ops.response import Feature

FEATURE = Feature(key="leaks")
