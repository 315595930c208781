"""(issue 15, being built) The incident response feature "postmortem"."""

from ops.response import Feature

FEATURE = Feature(key="postmortem")
