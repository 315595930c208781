"""(issue 15, being built) The incident response feature "containment"."""

from ops.response import Feature

FEATURE = Feature(key="containment")
